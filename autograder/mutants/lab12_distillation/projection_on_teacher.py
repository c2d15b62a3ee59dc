"""The projection maps the teacher's states down to the student's width instead of the student's up to the teacher's."""
# expect: hidden_matching_tests failed

# %% hidden_matching
class HiddenMatcher(nn.Module):
    def __init__(self, student_dim, teacher_dim):
        super().__init__()
        self.proj = nn.Linear(teacher_dim, student_dim)

    def forward(self, student_hidden, teacher_hidden, mask=None):
        diff = student_hidden - self.proj(teacher_hidden.detach())
        if mask is not None:
            diff = diff[mask]
        return diff.pow(2).mean()
