"""The 2×2 rotation blocks of M_k are transposed: the matrix shifts by −k instead of +k."""
# expect: offset_matrix_tests failed

# %% offset_matrix
def offset_matrix(k, d_model):
    omega = 10000 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    M = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i in range(d_model // 2):
        M[2 * i, 2 * i], M[2 * i, 2 * i + 1] = c[i], -s[i]
        M[2 * i + 1, 2 * i], M[2 * i + 1, 2 * i + 1] = s[i], c[i]
    return M.float()
