"""When value is omitted it defaults to the query instead of the key, so mha(x, memory) attends over
memory but reads its values from x."""
# expect: multihead_tests failed

# %% multihead_attention
class MultiHeadAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        d = config.d_model
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(config.kdim or d, d)
        self.v_proj = nn.Linear(config.vdim or d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, query, key=None, value=None, mask=None, need_weights=False):
        key = query if key is None else key
        value = query if value is None else value
        H = self.config.n_heads
        q = split_heads(self.q_proj(query), H)
        k = split_heads(self.k_proj(key), H)
        v = split_heads(self.v_proj(value), H)
        out, weights = attention(q, k, v, mask, self.config.dropout, self.training)
        return self.out_proj(merge_heads(out)), (weights if need_weights else None)
