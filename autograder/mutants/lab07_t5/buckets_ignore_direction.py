"""relative_position_bucket ignores the sign in the bidirectional case: keys on the right get the same buckets as keys on the left (no upper half of buckets for the future)."""

# expect: relative_buckets_tests failed, relative_bias_tests failed, t5_model_tests failed, greedy_decode_tests failed

# %% relative_buckets
def relative_position_bucket(relative_position: torch.Tensor, bidirectional: bool = True, num_buckets: int = 32,
                             max_distance: int = 128) -> torch.Tensor:
    """Bucket ids in [0, num_buckets) for relative positions memory - query (any shape)."""
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2  # the bug: no offset for keys on the right
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp_min(0)
    max_exact = num_buckets // 2
    log_ratio = torch.log(distance.float().clamp_min(1) / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (log_ratio * (num_buckets - max_exact)).long()).clamp_max(num_buckets - 1)
    return buckets + torch.where(distance < max_exact, distance, large)
