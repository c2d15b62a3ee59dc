"""Attention scores are divided by sqrt(d_kv) as in the original transformer; T5 does not scale them."""

# expect: t5_model_tests failed, greedy_decode_tests failed

# %% t5_model
class T5Attention(nn.Module):
    """Unscaled multi-head attention with an additive bias; no biases in the projections."""

    def __init__(self, config: T5Config):
        super().__init__()
        inner = config.n_heads * config.d_kv
        self.n_heads, self.dropout = config.n_heads, config.dropout
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)

    def forward(self, x, memory=None, bias=None, mask=None):
        memory = x if memory is None else memory
        q = split_heads(self.q(x), self.n_heads)  # (B, H, L, d_kv)
        k = split_heads(self.k(memory), self.n_heads)  # (B, H, S, d_kv)
        v = split_heads(self.v(memory), self.n_heads)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if bias is not None:
            scores = scores + bias
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = F.dropout(scores.softmax(-1), self.dropout, self.training)
        return self.o(merge_heads(weights @ v))  # (B, L, d_model)


class T5FeedForward(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.wo(self.dropout(F.relu(self.wi(x))))


class T5EncoderBlock(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.norm1 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.attn = T5Attention(config)
        self.norm2 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.ff = T5FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, bias, mask=None):
        x = x + self.dropout(self.attn(self.norm1(x), bias=bias, mask=mask))
        return x + self.dropout(self.ff(self.norm2(x)))


class T5DecoderBlock(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.norm1 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.self_attn = T5Attention(config)
        self.norm2 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.cross_attn = T5Attention(config)
        self.norm3 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.ff = T5FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, memory, bias, self_mask, cross_mask=None):
        x = x + self.dropout(self.self_attn(self.norm1(x), bias=bias, mask=self_mask))
        x = x + self.dropout(self.cross_attn(self.norm2(x), memory, mask=cross_mask))
        return x + self.dropout(self.ff(self.norm3(x)))


class T5Model(nn.Module):
    """forward(input_ids (B, S), decoder_input_ids (B, T), attention_mask (B, S) or None) -> logits (B, T, V)."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.config = config
        c = config
        self.shared = nn.Embedding(c.vocab_size, c.d_model)
        self.encoder_bias = RelativePositionBias(c.num_buckets, c.max_distance, c.n_heads, bidirectional=True)
        self.encoder = nn.ModuleList([T5EncoderBlock(c) for _ in range(c.n_layers)])
        self.encoder_norm = RMSNorm(c.d_model, c.layer_norm_eps)
        self.decoder_bias = RelativePositionBias(c.num_buckets, c.max_distance, c.n_heads, bidirectional=False)
        self.decoder = nn.ModuleList([T5DecoderBlock(c) for _ in range(c.decoder_layers)])
        self.decoder_norm = RMSNorm(c.d_model, c.layer_norm_eps)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, input_ids, decoder_input_ids, attention_mask=None):
        S, T = input_ids.size(1), decoder_input_ids.size(1)
        pad = None if attention_mask is None else attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
        x = self.dropout(self.shared(input_ids))
        bias = self.encoder_bias(S, S)  # once, shared by every layer
        for block in self.encoder:
            x = block(x, bias, pad)
        memory = self.dropout(self.encoder_norm(x))
        causal = torch.ones(T, T, dtype=torch.bool, device=input_ids.device).tril()
        y = self.dropout(self.shared(decoder_input_ids))
        bias = self.decoder_bias(T, T)
        for block in self.decoder:
            y = block(y, memory, bias, causal, pad)
        y = self.dropout(self.decoder_norm(y)) * self.config.d_model ** -0.5
        return y @ self.shared.weight.T  # (B, T, vocab_size)


def shift_right(labels: torch.Tensor, start_id: int = 0, pad_id: int = 0) -> torch.Tensor:
    """[start_id, labels[:, :-1]] with -100 replaced by pad_id."""
    shifted = torch.cat([torch.full_like(labels[:, :1], start_id), labels[:, :-1]], dim=1)
    return shifted.masked_fill(shifted == -100, pad_id)
