"""RMSNorm subtracts the mean (a LayerNorm without bias): T5's norm only rescales by the root mean square."""

# expect: rms_norm_tests failed, t5_model_tests failed, greedy_decode_tests failed

# %% rms_norm
class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight over the last axis; mean of squares in float32."""

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        variance = x.float().pow(2).mean(-1, keepdim=True)  # (..., 1)
        x = x * torch.rsqrt(variance + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x
