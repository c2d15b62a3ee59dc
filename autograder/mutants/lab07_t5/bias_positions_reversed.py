"""The relative position is computed as query - memory instead of memory - query: the bias of keys on the left and on the right is swapped."""

# expect: relative_bias_tests failed, t5_model_tests failed, greedy_decode_tests failed

# %% relative_bias
class RelativePositionBias(nn.Module):
    """Learned bias per (bucket, head); forward(L, S) -> (1, n_heads, L, S)."""

    def __init__(self, num_buckets: int, max_distance: int, n_heads: int, bidirectional: bool = True):
        super().__init__()
        self.num_buckets, self.max_distance, self.bidirectional = num_buckets, max_distance, bidirectional
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)

    def forward(self, query_length: int, key_length: int) -> torch.Tensor:
        device = self.relative_attention_bias.weight.device
        rel = torch.arange(query_length, device=device)[:, None] - torch.arange(key_length, device=device)[None, :]
        buckets = relative_position_bucket(rel, self.bidirectional, self.num_buckets, self.max_distance)  # (L, S)
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)  # (1, H, L, S)
