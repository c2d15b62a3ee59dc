"""Heads split with torch.stack over chunks and merged with torch.cat over unbind; the attention core
computed by hand (einsum, masked_fill with -inf, nan_to_num, F.dropout on the weights); the block's two
sub-layers written as one residual helper taking the sub-layer, its norm and its dropout."""

# %% split_merge_heads
def split_heads(x, n_heads):
    return torch.stack(x.chunk(n_heads, dim=-1), dim=1)  # (B, H, T, d_head)


def merge_heads(x):
    return torch.cat(x.unbind(dim=1), dim=-1)  # (B, T, H·d_head)

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
        if key is None:
            key = query
        if value is None:
            value = key
        H = self.config.n_heads
        q, k, v = (split_heads(proj(t), H) for proj, t in
                   ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value)))
        scores = torch.einsum("bhld,bhsd->bhls", q, k) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(-1).nan_to_num(0.0)
        weights = F.dropout(weights, self.config.dropout, self.training)
        out = self.out_proj(merge_heads(torch.einsum("bhls,bhsd->bhld", weights, v)))
        return out, weights if need_weights else None

# %% encoder_block
class TransformerEncoderBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        d, p = config.d_model, config.dropout
        self.self_attn = MultiHeadAttention(MultiHeadConfig(d, config.n_heads, dropout=p))
        self.linear1, self.linear2 = nn.Linear(d, config.d_ff), nn.Linear(config.d_ff, d)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(p), nn.Dropout(p), nn.Dropout(p)
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)

    def _ffn(self, h):
        act = F.gelu(self.linear1(h)) if self.config.activation == "gelu" else F.relu(self.linear1(h))
        return self.linear2(self.dropout(act))

    def _residual(self, x, sublayer, norm, drop):
        if self.config.norm_first:
            return x + drop(sublayer(norm(x)))
        return norm(x + drop(sublayer(x)))

    def forward(self, x, mask=None):
        x = self._residual(x, lambda h: self.self_attn(h, mask=mask)[0], self.norm1, self.dropout1)
        return self._residual(x, self._ffn, self.norm2, self.dropout2)
