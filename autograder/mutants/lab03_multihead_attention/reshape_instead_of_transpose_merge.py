"""merge_heads reshapes (B, H, T, d_head) to (B, T, H·d_head) without transposing back first."""
# expect: split_merge_tests failed, multihead_tests failed, encoder_block_tests failed

# %% split_merge_heads
def split_heads(x, n_heads):
    B, T, D = x.shape
    return x.view(B, T, n_heads, D // n_heads).transpose(1, 2)


def merge_heads(x):
    B, H, T, d_head = x.shape
    return x.reshape(B, T, H * d_head)
