"""Correct online softmax, but the output is acc / l without guarding l = 0: a query whose keys are all masked gets 0/0 = NaN instead of zeros."""

# expect: blockwise_tests failed

# %% blockwise_attention
def blockwise_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                        causal: bool = False, block_q: int = 64, block_k: int = 64) -> torch.Tensor:
    """softmax(q kᵀ / √d_k + mask) v, computed block_q queries × block_k keys at a time.

    q: (..., L, d_k), k: (..., S, d_k), v: (..., S, d_v) float tensors (leading dims broadcast)
    mask: optional bool tensor broadcastable to (..., L, S), True = may attend
    causal: if True, query i may attend only to keys j <= i
    returns (..., L, d_v), q's dtype; a query that sees no key gets zeros.
    """
    L, S = q.size(-2), k.size(-2)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    if mask is not None:
        lead = torch.broadcast_shapes(lead, mask.shape[:-2])
        mask = mask.expand(*mask.shape[:-2], L, S)  # a view, nothing allocated
    q = q / math.sqrt(q.size(-1))
    rows = []
    for i in range(0, L, block_q):
        qi = q[..., i:i + block_q, :]  # (..., bq, d_k)
        bq = qi.size(-2)
        m = q.new_full((*lead, bq, 1), float("-inf"))  # running max
        l = q.new_zeros((*lead, bq, 1))  # running sum of exp(s - m)
        acc = q.new_zeros((*lead, bq, v.size(-1)))  # running sum of exp(s - m) v
        for j in range(0, S, block_k):
            if causal and j > i + bq - 1:
                break  # every later key is in the future of every query of this block
            kj, vj = k[..., j:j + block_k, :], v[..., j:j + block_k, :]
            s = qi @ kj.transpose(-2, -1)  # (..., bq, bk)
            keep = None if mask is None else mask[..., i:i + bq, j:j + block_k]
            if causal:
                rows_i = torch.arange(i, i + bq)[:, None]
                cols_j = torch.arange(j, j + kj.size(-2))[None, :]
                keep = (cols_j <= rows_i) if keep is None else keep & (cols_j <= rows_i)
            if keep is not None:
                s = s.masked_fill(~keep, float("-inf"))
            m_new = torch.maximum(m, s.detach().amax(-1, keepdim=True))
            m_safe = m_new.masked_fill(m_new == float("-inf"), 0.0)  # nothing seen yet: shift by 0
            p = torch.exp(s - m_safe)
            alpha = torch.exp(m - m_safe)  # 0 while m = -inf
            l = alpha * l + p.sum(-1, keepdim=True)
            acc = alpha * acc + p @ vj
            m = m_new
        rows.append(acc / l)  # the bug: 0 / 0 for fully masked rows
    return torch.cat(rows, dim=-2)
