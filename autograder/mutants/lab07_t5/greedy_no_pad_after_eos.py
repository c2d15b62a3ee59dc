"""Greedy decoding keeps generating real tokens after a sequence's EOS instead of padding it."""

# expect: greedy_decode_tests failed

# %% greedy_decode
@torch.no_grad()
def greedy_decode(model: nn.Module, input_ids: torch.Tensor, max_new_tokens: int,
                  attention_mask: torch.Tensor | None = None, start_id: int = 0, eos_id: int = 1,
                  pad_id: int = 0) -> torch.Tensor:
    """(B, 1 + n) long: start token, then greedy tokens; pad after each sequence's EOS."""
    B = input_ids.size(0)
    tokens = torch.full((B, 1), start_id, dtype=torch.long, device=input_ids.device)
    done = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        logits = model(input_ids, tokens, attention_mask=attention_mask)[:, -1]  # (B, V)
        nxt = logits.argmax(-1)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        done = done | (nxt == eos_id)
        if done.all():
            break
    return tokens
