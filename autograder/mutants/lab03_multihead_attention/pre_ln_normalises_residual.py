"""Pre-LN block normalises the residual stream itself (x = norm(x) + f(norm(x))), so no clean path."""
# expect: encoder_block_tests failed

# %% encoder_block
class TransformerEncoderBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        d = config.d_model
        self.self_attn = MultiHeadAttention(MultiHeadConfig(d, config.n_heads, dropout=config.dropout))
        self.linear1 = nn.Linear(d, config.d_ff)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.d_ff, d)
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.activation = F.gelu if config.activation == "gelu" else F.relu

    def forward(self, x, mask=None):
        def attn(h):
            return self.dropout1(self.self_attn(h, mask=mask)[0])

        def ffn(h):
            return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(h)))))

        if self.config.norm_first:
            x = self.norm1(x)
            x = x + attn(x)
            x = self.norm2(x)
            return x + ffn(x)
        x = self.norm1(x + attn(x))
        return self.norm2(x + ffn(x))
