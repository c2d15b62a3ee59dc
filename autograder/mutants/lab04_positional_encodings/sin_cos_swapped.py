"""Sines and cosines interleaved the wrong way round: cos in the even dimensions, sin in the odd ones."""
# expect: sinusoidal_tests failed

# %% sinusoidal_encoding
def sinusoidal_encoding(n_positions, d_model):
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    dims = torch.arange(d_model)
    two_i = (dims // 2 * 2).double()
    angles = pos / 10000 ** (two_i / d_model)
    return torch.where(dims % 2 == 0, angles.cos(), angles.sin()).float()
