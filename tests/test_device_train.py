import torch

from labsupport import get_device, seed_everything
from labsupport.plots import loss_curve
from labsupport.train import TrainConfig, fit, random_batches


def test_device_falls_back_and_can_be_forced(monkeypatch):
    assert get_device().type in {"cuda", "mps", "cpu"}
    monkeypatch.setenv("LABSUPPORT_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_seeding_is_repeatable():
    seed_everything(3)
    a = torch.randn(4)
    seed_everything(3)
    assert torch.equal(a, torch.randn(4))


def test_fit_lowers_the_loss_of_a_bigram_model():
    g = seed_everything(0)
    data = torch.arange(200) % 7  # a perfectly predictable sequence
    model = torch.nn.Sequential(torch.nn.Embedding(7, 8), torch.nn.Linear(8, 7))

    def loss_fn(m, batch):
        x, y = batch
        return torch.nn.functional.cross_entropy(m(x).flatten(0, 1), y.flatten())

    history = fit(model, random_batches(data, 8, 4, g), loss_fn,
                  TrainConfig(steps=60, lr=0.05, eval_every=20, progress=False),
                  evaluate=lambda m: 0.0, device=torch.device("cpu"))
    assert history.losses[-1] < 0.5 * history.losses[0]
    assert [s for s, _ in history.val_losses] == [20, 40, 60]
    assert loss_curve(history.losses, history.val_losses).get_xlabel() == "step"
