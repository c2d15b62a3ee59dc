"""The padding is masked but the prompt is not: the log-probability of the whole sequence is returned,
which behaves like ignoring prompt_lengths."""
# expect: sequence_logprobs_tests failed

# %% sequence_logprobs
def sequence_logprobs(logits, input_ids, prompt_lengths, attention_mask):
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    token_logp = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return (token_logp * attention_mask[:, 1:]).sum(-1)
