"""The squared error is summed over the features and averaged over positions only (not divided by d_t)."""
# expect: hidden_matching_tests failed

# %% hidden_matching
class HiddenMatcher(nn.Module):
    def __init__(self, student_dim, teacher_dim):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_hidden, teacher_hidden, mask=None):
        diff = self.proj(student_hidden) - teacher_hidden.detach()
        if mask is not None:
            diff = diff[mask]
        return diff.pow(2).sum(-1).mean()
