"""Keys are projected with F and values with E: behaves like Linformer with the two projections exchanged."""

# expect: linformer_tests failed

# %% linformer_attention
def linformer_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, E: torch.Tensor,
                        F: torch.Tensor) -> torch.Tensor:
    """softmax(q (E k)ᵀ / √d) (F v).

    q, k: (..., n, d); v: (..., n, d_v); E, F: (..., k_rows, n), broadcasting with the leading dims
    returns (..., n, d_v)
    """
    k_proj = F @ k  # the bug: F for the keys  # (..., k_rows, d): mixtures of positions
    v_proj = E @ v  # (..., k_rows, d_v)
    return attention(q, k_proj, v_proj)[0]  # (..., n, d_v)
