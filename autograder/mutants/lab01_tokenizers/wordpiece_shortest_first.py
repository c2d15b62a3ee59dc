"""WordPiece takes the shortest matching piece first instead of the longest."""
# expect: wordpiece_tests failed

# %% wordpiece_encode
def wordpiece_encode(word, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
    if len(word) > max_input_chars_per_word:
        return [vocab[unk_token]]
    ids, start = [], 0
    while start < len(word):
        for end in range(start + 1, len(word) + 1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                ids.append(vocab[piece])
                start = end
                break
        else:
            return [vocab[unk_token]]
    return ids
