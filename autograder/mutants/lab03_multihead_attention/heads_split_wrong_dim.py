"""split_heads views (B, T, d_model) directly as (B, H, T, d_head), so a head mixes positions."""
# expect: split_merge_tests failed, multihead_tests failed, encoder_block_tests failed

# %% split_merge_heads
def split_heads(x, n_heads):
    B, T, D = x.shape
    return x.view(B, n_heads, T, D // n_heads)


def merge_heads(x):
    B, H, T, d_head = x.shape
    return x.transpose(1, 2).reshape(B, T, H * d_head)
