"""token_type_ids are ignored: every position gets the embedding of segment 0, so sentence A and sentence B
cannot be told apart. The encoder and both heads built on these embeddings inherit the bug."""
# expect: bert_embeddings_tests failed, bert_model_tests failed, mlm_head_tests failed, cls_classifier_tests failed

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
        positions = torch.arange(input_ids.size(1))
        segments = torch.zeros_like(input_ids)
        h = self.token_embedding(input_ids) + self.position_embedding(positions) + self.segment_embedding(segments)
        return self.dropout(self.norm(h))
