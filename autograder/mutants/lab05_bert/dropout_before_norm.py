"""Dropout is applied to the sum before the LayerNorm instead of after it: in training the normalised
vectors are not dropped and the surviving entries are not rescaled."""
# expect: bert_embeddings_tests failed

# %% bert_embeddings
class BertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.token_embedding = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_id)
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.segment_embedding = nn.Embedding(config.n_segments, d)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids, token_type_ids=None):
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(input_ids.size(1))
        h = self.token_embedding(input_ids) + self.position_embedding(positions) + self.segment_embedding(token_type_ids)
        return self.norm(self.dropout(h))
