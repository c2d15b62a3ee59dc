"""The teacher's hidden states are not detached: the matching loss sends gradients into the teacher."""
# expect: hidden_matching_tests failed

# %% hidden_matching
class HiddenMatcher(nn.Module):
    def __init__(self, student_dim, teacher_dim):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_hidden, teacher_hidden, mask=None):
        diff = self.proj(student_hidden) - teacher_hidden
        if mask is not None:
            diff = diff[mask]
        return diff.pow(2).mean()
