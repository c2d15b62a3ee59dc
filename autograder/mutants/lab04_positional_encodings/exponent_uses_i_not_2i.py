"""The exponent of the wavelength is computed as i/d (the pair index) instead of 2i/d."""
# expect: sinusoidal_tests failed

# %% sinusoidal_encoding
def sinusoidal_encoding(n_positions, d_model):
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    dims = torch.arange(d_model)
    i = (dims // 2).double()
    angles = pos / 10000 ** (i / d_model)
    return torch.where(dims % 2 == 0, angles.sin(), angles.cos()).float()
