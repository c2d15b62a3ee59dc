"""The memory is concatenated and returned without .detach(): gradients flow into the previous segment, whose graph would then be kept alive segment after segment."""

# expect: xl_memory_tests failed

# %% xl_memory
class XLMemoryAttention(nn.Module):
    """Causal multi-head self-attention over [memory; x] (Transformer-XL); returns (output, new_memory)."""

    def __init__(self, config: XLConfig):
        super().__init__()
        self.config = config
        self.attn = MultiHeadAttention(MultiHeadConfig(config.d_model, config.n_heads))

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None):
        """x (B, T, d_model), memory (B, M, d_model) or None
        returns (output (B, T, d_model), new_memory (B, min(mem_len, M + T), d_model), detached)"""
        context = x if memory is None else torch.cat([memory, x], dim=1)  # (B, M+T, d)
        T = x.size(1)
        M = context.size(1) - T
        mask = torch.arange(M + T)[None, :] <= M + torch.arange(T)[:, None]  # (T, M+T)
        out, _ = self.attn(x, context, mask=mask)
        start = max(0, M + T - self.config.mem_len)
        return out, context[:, start:]
