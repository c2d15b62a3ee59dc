"""Dropout is applied to the input of the whole layer, base path included: in training the pre-trained layer's own output is randomly zeroed."""
# expect: lora_linear_tests failed

# %% lora_linear
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.scaling = alpha / r
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)
        self.merged = False

    def forward(self, x):
        if self.merged:
            return self.base(x)
        x = self.dropout(x)
        return self.base(x) + self.scaling * (x @ self.lora_A.t() @ self.lora_B.t())
