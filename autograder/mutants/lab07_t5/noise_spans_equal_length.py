"""The noise tokens are split into spans of (almost) equal length instead of a uniformly random split: counts are right, but every span has the mean length."""

# expect: noise_mask_tests failed

# %% noise_mask
def random_spans_noise_mask(length: int, noise_density: float = 0.15, mean_span_length: float = 3.0,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """T5's noise mask: bool (length,), True = drop. Kept and noise runs alternate, kept first."""
    def segment(num_items, num_segments):  # uniform random split into positive lengths
        cuts = torch.randperm(num_items - 1, generator=generator)[: num_segments - 1].sort().values + 1
        edges = torch.cat([torch.tensor([0]), cuts, torch.tensor([num_items])])
        return edges.diff()  # (num_segments,)

    num_noise = min(max(round(length * noise_density), 1), length - 1)
    num_spans = max(1, round(num_noise / mean_span_length))
    noise_lengths = torch.full((num_spans,), num_noise // num_spans)
    noise_lengths[: num_noise % num_spans] += 1
    kept_lengths = segment(length - num_noise, num_spans)
    runs = torch.stack([kept_lengths, noise_lengths], dim=1).flatten()  # kept, noise, kept, noise, ...
    return torch.tensor([False, True]).repeat(num_spans).repeat_interleave(runs)
