"""The id, paper and title of each registered claim, for ``inertia reproduce --list`` and ``--only`` checks without
importing JAX. Generated from `inertia.experiments.CLAIMS`; tests/test_checks.py fails when it is out of date.

Regenerate with ``python -m inertia.cli._claims``.
"""

#: claim id → (paper, title), in registration order.
CLAIM_LIST: dict[str, tuple[str, str]] = {
    "ks-autoencoder":
        ("kovachki-stuart-2021",
         "Heavy ball and Nesterov training a deep autoencoder on MNIST follow the rescaled flow to O(h) and "
         "the modified-loss flow to O(h²)"),
    "ks-momentum-orders":
        ("kovachki-stuart-2021",
         "Momentum follows the rescaled gradient flow to O(h) and the modified flows to O(h²)"),
    "gd-modified-flow-orders":
        ("rosca-thesis",
         "GD follows implicit gradient regularisation to O(h²) and the third-order field to O(h³)"),
    "ks-invariant-manifold":
        ("kovachki-stuart-2021",
         "Runs started off the slow manifold fall onto it, and stay within O(h³) of its formula"),
    "principal-flow-instability":
        ("rosca-thesis",
         "The principal flow captures GD's oscillation (hμ ∈ (1,2)) and divergence (hμ > 2)"),
    "conventions-identical":
        ("kovachki-stuart-2021",
         "Practitioner, normalised and canonical forms give identical iterates"),
    "diagnose-predictions":
        ("liu-ziyin-ueda-2021",
         "diagnose on real networks: SGDM ≈ SGD at h/(1−β) in the noise-dominated regime, the exact discrete "
         "stationary loss and the stability margin hold on the last layer at its minimum"),
    "dal-digits":
        ("rosca-thesis",
         "DAL trains a small network without tuning the learning rate, where its own first step diverges"),
    "two-player-drift":
        ("rosca-thesis",
         "Two-player GD follows its modified losses to O(h³) per step; cancelling the interaction drift "
         "stabilises a game"),
    "stationary-variance-1d":
        ("liu-ziyin-ueda-2021",
         "Exact stationary variance of SGD in 1-D diverges as λk → 2"),
    "stationary-2d":
        ("liu-ziyin-ueda-2021",
         "2-D stationary covariance with Hessian eigenvalues 1 and 0.1"),
    "momentum-divergence":
        ("liu-ziyin-ueda-2021",
         "SGDM at λk = 2.75 diverges as μ → (λk − 2)/2"),
    "minibatch-regression":
        ("supporting",
         "Minibatch noise in linear regression, N = 1000, S = 100"),
    "label-noise-regression":
        ("supporting",
         "Label noise in online linear regression: the self-consistent solution"),
    "escape-expected-loss":
        ("liu-ziyin-ueda-2021",
         "Expected loss from the minimum: the discrete formula, not the continuous one"),
    "kramers-escape-rate":
        ("liu-ziyin-ueda-2021",
         "Escape rate over a barrier: Theorem 9's exponent against Monte Carlo"),
    "gan-drift":
        ("rosca-thesis",
         "Dirac GAN: cancelling the interaction drift stabilises simultaneous GD, strengthening it "
         "destabilises"),
    "gan-mnist-drift":
        ("rosca-thesis",
         "MNIST GAN: cancelling the interaction drift improves simultaneous GD's samples, strengthening it "
         "hurts"),
    "high-resolution-ode":
        ("liu-2024",
         "The high-resolution ODEs follow heavy ball and NAG to O(s); without the gradient correction NAG's "
         "is O(√s)"),
    "igr-smoothness":
        ("rosca-thesis",
         "The explicit IGR regulariser at a small learning rate reproduces the smoothing of a large learning "
         "rate"),
    "sgdm-lm-finetune":
        ("wang-2024",
         "Fine-tuning a pretrained language model, few-shot and with more data: SGDM matches SGD at the same "
         "effective learning rate, at the best learning rate"),
    "lzu-approximation-error":
        ("liu-ziyin-ueda-2021",
         "The continuous-time approximation's error grows as λk/(2(1+μ))"),
    "lzu-bayesian-inference":
        ("liu-ziyin-ueda-2021",
         "The learning rate at which SGD samples the posterior: 2S/(N+S), not 2S/N"),
    "lzu-second-order":
        ("liu-ziyin-ueda-2021",
         "Stationary covariance of damped Newton, natural gradient and Adam"),
    "sgdm-marginal-value":
        ("wang-2024",
         "SGD with momentum is equivalent to SGD at the same effective learning rate, except at large "
         "learning rate and full batch"),
    "sgdm-batch-size":
        ("wang-2024",
         "Across batch sizes, SGDM matches SGD at the same effective learning rate, except at large batch and "
         "learning rate; SVAG closes that gap"),
    "ntk-nag-beats-hb":
        ("liu-2024",
         "NAG beats heavy ball at a shared (η, β) on wide two-layer ReLU nets, as the kernel regime predicts; "
         "tuned heavy ball beats tuned NAG"),
    "quadratic-stability-thresholds":
        ("supporting",
         "Measured stability thresholds of GD, heavy ball and Nesterov match theory"),
    "polyak-accelerated-rate":
        ("supporting",
         "Polyak's heavy ball reaches rate (√κ−1)/(√κ+1); the best GD only (κ−1)/(κ+1)"),
    "liu-rate-bounds":
        ("liu-2024",
         "HB and NAG train an over-parameterised two-layer ReLU network inside Liu et al.'s bounds; NAG faster"),
    "rl-spectral-normalisation":
        ("rosca-thesis",
         "In DQN, spectral normalisation of one layer is recovered by dividing that layer's Adam step by ρ"),
    "sde-weak-order":
        ("supporting",
         "Weak order of the SDE models of SGD and SGDM"),
    "svag-weak-error":
        ("supporting",
         "SVAG's weak error to the SDE shrinks as 1/ℓ"),
    "sharpness-edge-of-stability":
        ("supporting",
         "Sharpness along GD and heavy-ball training stops at the stability threshold 2(1+β)/h"),
    "smoothness-effective-lr":
        ("rosca-thesis",
         "Spectral normalisation of a layer is recovered by rescaling that layer's Adam step (lr and ε)"),
    "wang-weak-approximation":
        ("wang-2024",
         "SGDM(η, β) and SGD(η) have the same law up to an error that vanishes with η (fixed β and 1−β = η^α)"),
}


def _regenerate() -> None:
    import json
    from pathlib import Path

    from ..experiments import CLAIMS

    path = Path(__file__)
    head, _, rest = path.read_text().partition("CLAIM_LIST: dict[str, tuple[str, str]] = {\n")
    _, _, tail = rest.partition("\n}\n")

    def title(text: str) -> str:  # long titles as adjacent literals, to keep lines within 120 characters
        cut = text.rfind(" ", 0, 100) + 1 if len(text) > 100 else len(text)
        parts = [text[:cut], text[cut:]] if cut < len(text) else [text]
        return "\n         ".join(json.dumps(part, ensure_ascii=False) for part in parts)

    def entry(claim) -> str:
        return f"    {json.dumps(claim.id)}:\n        ({json.dumps(claim.paper)},\n         {title(claim.title)}),"

    body = "\n".join(entry(claim) for claim in CLAIMS.values())
    path.write_text(f"{head}CLAIM_LIST: dict[str, tuple[str, str]] = {{\n{body}\n}}\n{tail}")


if __name__ == "__main__":
    _regenerate()
