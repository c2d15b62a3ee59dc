"""Another correct solution: cut points drawn with torch.rand + argsort, span corruption by scanning runs,
bucket boundaries with torch.floor and torch.minimum, the bias indexed with advanced indexing, RMSNorm
through torch.linalg.vector_norm, attention with einsum and explicit reshapes, an encode/decode split,
and greedy decoding that collects tokens in a Python list."""

# %% noise_mask
def random_spans_noise_mask(length, noise_density=0.15, mean_span_length=3.0, generator=None):
    def split(n, k):
        order = torch.rand(n - 1, generator=generator).argsort()  # a uniformly random subset of the gaps
        cuts = sorted((order[: k - 1] + 1).tolist())
        bounds = [0] + cuts + [n]
        return [b - a for a, b in zip(bounds[:-1], bounds[1:])]

    n_noise = round(length * noise_density)
    n_noise = max(1, min(n_noise, length - 1))
    n_spans = max(round(n_noise / mean_span_length), 1)
    noise = split(n_noise, n_spans)
    kept = split(length - n_noise, n_spans)
    mask = []
    for a, b in zip(kept, noise):
        mask += [False] * a + [True] * b
    return torch.tensor(mask, dtype=torch.bool)


# %% span_corruption
def span_corrupt(tokens, noise_mask, vocab_size, eos_id=1):
    inputs, targets, n_spans, t = [], [], 0, 0
    T = len(tokens)
    while t < T:
        if bool(noise_mask[t]):
            sentinel = vocab_size - 1 - n_spans
            n_spans += 1
            inputs.append(sentinel)
            targets.append(sentinel)
            while t < T and bool(noise_mask[t]):
                targets.append(int(tokens[t]))
                t += 1
        else:
            inputs.append(int(tokens[t]))
            t += 1
    targets += [vocab_size - 1 - n_spans, eos_id]
    inputs.append(eos_id)
    return torch.tensor(inputs, dtype=torch.long), torch.tensor(targets, dtype=torch.long)


# %% relative_buckets
def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    r = relative_position.long()
    if bidirectional:
        half = num_buckets // 2
        offset = torch.where(r > 0, half, 0)
        n = r.abs()
    else:
        half = num_buckets
        offset = torch.zeros_like(r)
        n = torch.maximum(-r, torch.zeros_like(r))
    exact = half // 2
    nf = torch.maximum(n, torch.ones_like(n)).to(torch.float32)
    scaled = torch.log(nf / exact) / math.log(max_distance / exact) * (half - exact)
    log_bucket = exact + torch.floor(scaled).long()
    log_bucket = torch.minimum(log_bucket, torch.full_like(log_bucket, half - 1))
    return offset + torch.where(n < exact, n, log_bucket)


# %% relative_bias
class RelativePositionBias(nn.Module):
    def __init__(self, num_buckets, max_distance, n_heads, bidirectional=True):
        super().__init__()
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)
        self.settings = (bidirectional, num_buckets, max_distance)

    def forward(self, query_length, key_length):
        w = self.relative_attention_bias.weight  # (num_buckets, H)
        q = torch.arange(query_length, device=w.device).unsqueeze(1)
        k = torch.arange(key_length, device=w.device).unsqueeze(0)
        buckets = relative_position_bucket(k - q, *self.settings)  # (L, S)
        bias = w[buckets]  # (L, S, H)
        return bias.movedim(-1, 0)[None]  # (1, H, L, S)


# %% rms_norm
class RMSNorm(nn.Module):
    def __init__(self, d_model, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.eps = eps

    def forward(self, x):
        d = x.size(-1)
        ms = torch.linalg.vector_norm(x.to(torch.float32), dim=-1, keepdim=True) ** 2 / d
        y = x / torch.sqrt(ms + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            y = y.to(self.weight.dtype)
        return y * self.weight


# %% t5_model
class T5Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.h, self.dk, self.p = config.n_heads, config.d_kv, config.dropout
        self.q = nn.Linear(config.d_model, self.h * self.dk, bias=False)
        self.k = nn.Linear(config.d_model, self.h * self.dk, bias=False)
        self.v = nn.Linear(config.d_model, self.h * self.dk, bias=False)
        self.o = nn.Linear(self.h * self.dk, config.d_model, bias=False)

    def forward(self, x, memory=None, bias=None, mask=None):
        if memory is None:
            memory = x
        B, L, _ = x.shape
        S = memory.size(1)
        q = self.q(x).reshape(B, L, self.h, self.dk)
        k = self.k(memory).reshape(B, S, self.h, self.dk)
        v = self.v(memory).reshape(B, S, self.h, self.dk)
        scores = torch.einsum("blhd,bshd->bhls", q, k)
        if bias is not None:
            scores = scores + bias
        if mask is not None:
            scores = torch.where(mask, scores, torch.full_like(scores, torch.finfo(scores.dtype).min))
        w = torch.softmax(scores, dim=-1)
        if self.training and self.p > 0:
            w = F.dropout(w, self.p)
        out = torch.einsum("bhls,bshd->blhd", w, v).reshape(B, L, self.h * self.dk)
        return self.o(out)


class T5FeedForward(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.wo(self.drop(torch.relu(self.wi(x))))


class T5EncoderBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.norm1 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.attn = T5Attention(config)
        self.norm2 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.ff = T5FeedForward(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, bias, mask=None):
        h = self.attn(self.norm1(x), None, bias, mask)
        x = x + self.drop(h)
        return x + self.drop(self.ff(self.norm2(x)))


class T5DecoderBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.norm1 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.self_attn = T5Attention(config)
        self.norm2 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.cross_attn = T5Attention(config)
        self.norm3 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.ff = T5FeedForward(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, memory, bias, self_mask, cross_mask=None):
        x = x + self.drop(self.self_attn(self.norm1(x), None, bias, self_mask))
        x = x + self.drop(self.cross_attn(self.norm2(x), memory, None, cross_mask))
        return x + self.drop(self.ff(self.norm3(x)))


class T5Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder_bias = RelativePositionBias(config.num_buckets, config.max_distance, config.n_heads, True)
        self.decoder_bias = RelativePositionBias(config.num_buckets, config.max_distance, config.n_heads, False)
        self.encoder = nn.ModuleList(T5EncoderBlock(config) for _ in range(config.n_layers))
        self.decoder = nn.ModuleList(T5DecoderBlock(config) for _ in range(config.decoder_layers))
        self.encoder_norm = RMSNorm(config.d_model, config.layer_norm_eps)
        self.decoder_norm = RMSNorm(config.d_model, config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)

    def encode(self, input_ids, pad):
        h = self.drop(self.shared(input_ids))
        bias = self.encoder_bias(h.size(1), h.size(1))
        for block in self.encoder:
            h = block(h, bias, pad)
        return self.drop(self.encoder_norm(h))

    def forward(self, input_ids, decoder_input_ids, attention_mask=None):
        pad = None
        if attention_mask is not None:
            pad = (attention_mask != 0).view(attention_mask.size(0), 1, 1, -1)
        memory = self.encode(input_ids, pad)
        T = decoder_input_ids.size(1)
        pos = torch.arange(T, device=decoder_input_ids.device)
        causal = pos[None, :] <= pos[:, None]
        h = self.drop(self.shared(decoder_input_ids))
        bias = self.decoder_bias(T, T)
        for block in self.decoder:
            h = block(h, memory, bias, causal, pad)
        h = self.drop(self.decoder_norm(h)) / math.sqrt(self.config.d_model)
        return F.linear(h, self.shared.weight)


def shift_right(labels, start_id=0, pad_id=0):
    out = torch.empty_like(labels)
    out[:, 0] = start_id
    out[:, 1:] = labels[:, :-1]
    out[out == -100] = pad_id
    return out


# %% greedy_decode
def greedy_decode(model, input_ids, max_new_tokens, attention_mask=None, start_id=0, eos_id=1, pad_id=0):
    with torch.no_grad():
        rows = [[start_id] for _ in range(input_ids.size(0))]
        finished = [False] * len(rows)
        for _ in range(max_new_tokens):
            if all(finished):
                break
            prefix = torch.tensor(rows, dtype=torch.long)
            last = model(input_ids, prefix, attention_mask=attention_mask)[:, -1, :]
            for b, row in enumerate(rows):
                if finished[b]:
                    row.append(pad_id)
                else:
                    token = int(last[b].argmax())
                    row.append(token)
                    finished[b] = token == eos_id
        return torch.tensor(rows, dtype=torch.long)
