"""Another correct solution: explicit position ids, masking drawn with torch.bernoulli and torch.multinomial,
a per-position loop for the replacements, logits as a matrix product with the shared table, a hand-written
masked mean for the loss, and F.linear for the pooler."""

# %% bert_embeddings
class BertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_id)
        self.position_embedding = nn.Embedding(config.max_len, config.d_model)
        self.segment_embedding = nn.Embedding(config.n_segments, config.d_model)
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids, token_type_ids=None):
        B, T = input_ids.shape
        position_ids = torch.arange(T).unsqueeze(0).expand(B, T)  # (B, T)
        if token_type_ids is None:
            token_type_ids = torch.zeros(B, T, dtype=torch.long)
        total = self.token_embedding(input_ids)
        total = total + self.segment_embedding(token_type_ids)
        total = total + self.position_embedding(position_ids)
        return self.dropout(self.norm(total))

# %% mlm_masking
def mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    B, T = input_ids.shape
    special = set(int(i) for i in special_ids)
    ordinary = [i for i in range(vocab_size) if i not in special]
    inputs = input_ids.clone()
    labels = torch.full((B, T), -100, dtype=torch.long)
    chosen = torch.bernoulli(torch.full((B, T), float(p)), generator=generator).bool()
    action = torch.rand(B, T, generator=generator)
    weights = torch.ones(len(ordinary))
    for b in range(B):
        for t in range(T):
            token = int(input_ids[b, t])
            if token in special or not chosen[b, t]:
                continue
            labels[b, t] = token
            if action[b, t] < 0.8:
                inputs[b, t] = mask_id
            elif action[b, t] < 0.9:
                inputs[b, t] = ordinary[int(torch.multinomial(weights, 1, generator=generator))]
    return inputs, labels

# %% bert_model
class BertModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList()
        for _ in range(config.n_layers):
            self.layers.append(TransformerEncoderBlock(config.block_config()))

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        hidden = self.embeddings(input_ids, token_type_ids=token_type_ids)
        mask = None
        if attention_mask is not None:
            B, T = attention_mask.shape
            mask = (attention_mask == 1).view(B, 1, 1, T)
        for block in self.layers:
            hidden = block(hidden, mask=mask)
        return hidden

# %% mlm_head
class BertForMaskedLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.transform = nn.Linear(config.d_model, config.d_model)
        self.transform_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.d_model, config.vocab_size)
        self.bert.embeddings.token_embedding.weight = self.decoder.weight  # tie (the other way round)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        h = self.bert(input_ids, token_type_ids, attention_mask)
        z = self.transform_norm(F.gelu(self.transform(h)))
        logits = z @ self.bert.embeddings.token_embedding.weight.T + self.decoder.bias  # (B, T, V)
        if labels is None:
            return logits, None
        keep = labels != -100
        log_probs = torch.log_softmax(logits[keep], dim=-1)  # (N, V)
        loss = -log_probs.gather(1, labels[keep].unsqueeze(1)).mean()
        return logits, loss

# %% cls_classifier
class BertForSequenceClassification(nn.Module):
    def __init__(self, config, n_classes):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.pooler = nn.Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, n_classes)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        cls_vector = self.bert(input_ids, token_type_ids, attention_mask)[:, 0, :]
        pooled = torch.tanh(F.linear(cls_vector, self.pooler.weight, self.pooler.bias))
        logits = self.classifier(self.dropout(pooled))
        if labels is None:
            return logits, None
        return logits, F.nll_loss(F.log_softmax(logits, dim=-1), labels)
