"""A correct answer in another style: each key block is attended to on its own (a normalised partial
output and its log-sum-exp), and partial results are merged pairwise with logaddexp; Linformer with
einsum; the masks from explicit Python sets; the memory layer written without the shifted-mask helper."""

# %% blockwise_attention
def blockwise_attention(q, k, v, mask=None, causal=False, block_q=64, block_k=64):
    L, S, dk = q.size(-2), k.size(-2), q.size(-1)
    if mask is not None:
        mask = mask.expand(*mask.shape[:-2], L, S)
    out_rows = []
    for i0 in range(0, L, block_q):
        i1 = min(i0 + block_q, L)
        out, lse = None, None  # merged normalised output and log-sum-exp of the scores seen so far
        for j0 in range(0, S, block_k):
            j1 = min(j0 + block_k, S)
            s = torch.matmul(q[..., i0:i1, :], k[..., j0:j1, :].transpose(-1, -2)) / dk ** 0.5
            allowed = torch.ones(i1 - i0, j1 - j0, dtype=torch.bool)
            if causal:
                allowed = torch.arange(j0, j1)[None, :] <= torch.arange(i0, i1)[:, None]
            if mask is not None:
                allowed = allowed & mask[..., i0:i1, j0:j1]
            s = torch.where(allowed, s, torch.full_like(s, float("-inf")))
            block_lse = torch.logsumexp(s, dim=-1, keepdim=True)  # -inf for a row with no key here
            finite = torch.isfinite(block_lse)
            w = torch.exp(s - torch.where(finite, block_lse, torch.zeros_like(block_lse)))
            block_out = torch.matmul(w, v[..., j0:j1, :])  # normalised within the block (0 if no key)
            if out is None:
                out, lse = block_out, block_lse
                continue
            new_lse = torch.logaddexp(lse, block_lse)
            safe = torch.where(torch.isfinite(new_lse), new_lse, torch.zeros_like(new_lse))
            out = torch.exp(lse - safe) * out + torch.exp(block_lse - safe) * block_out
            lse = new_lse
        out_rows.append(out)
    return torch.cat(out_rows, dim=-2)

# %% linformer_attention
def linformer_attention(q, k, v, E, F):
    kp = torch.einsum("...rn,...nd->...rd", E, k)
    vp = torch.einsum("...rn,...nd->...rd", F, v)
    w = torch.softmax(torch.einsum("...id,...rd->...ir", q, kp) / math.sqrt(q.shape[-1]), dim=-1)
    return torch.einsum("...ir,...rd->...id", w, vp)

# %% sparse_masks
def strided_mask(n, stride, causal=True):
    m = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            if causal and j > i:
                continue
            if abs(i - j) <= stride or (i - j) % stride == 0:
                m[i, j] = True
    return m


def fixed_mask(n, stride, c, causal=True):
    summaries = {j for j in range(n) if j % stride in range(stride - c, stride)}
    m = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            if (not causal or j <= i) and (j // stride == i // stride or j in summaries):
                m[i, j] = True
    return m

# %% xl_memory
class XLMemoryAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.attn = MultiHeadAttention(MultiHeadConfig(config.d_model, config.n_heads))

    def forward(self, x, memory=None):
        if memory is None:
            memory = x.new_zeros(x.size(0), 0, x.size(2))
        memory = memory.detach()
        M, T = memory.size(1), x.size(1)
        context = torch.cat((memory, x), 1)
        mask = torch.ones(T, M + T, dtype=torch.bool).tril(diagonal=M)  # query t sees keys up to M + t
        out = self.attn(x, context, context, mask=mask)[0]
        keep = min(self.config.mem_len, M + T)
        return out, context[:, M + T - keep:].detach()
