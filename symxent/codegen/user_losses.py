"""User-defined row losses, written as formulas, that the documentation, the checks and the CUDA examples use:
focal loss (Lin et al. 2017), cross-entropy with a z-loss written out, and Gemma 2's logit soft-capping.

Each entry: ``(formula, example parameters, torch reference of the row loss)``; a row loss from the formula is
``Loss.from_formula(formula, name=...)``, which goes through the same generator as the catalogue's losses.
"""
#: name -> (formula, params, torch reference of the row loss)
USER_LOSSES = {
    "focal": ("-(1 - softmax(z)[c])**gamma * log_softmax(z)[c]", {"gamma": 2.0},
              lambda torch, z, c, p: -(1 - torch.softmax(z, 1).gather(1, c[:, None])[:, 0]) ** p["gamma"]
              * torch.log_softmax(z, 1).gather(1, c[:, None])[:, 0]),
    "z_loss": ("logsumexp(z) - z[c] + lse_square_scale*logsumexp(z)**2", {"lse_square_scale": 1e-4},
               lambda torch, z, c, p: torch.nn.functional.cross_entropy(z, c, reduction="none")
               + p["lse_square_scale"] * torch.logsumexp(z, 1) ** 2),
    "softcap": ("log(sum(exp(cap*tanh(z[i]/cap)), i)) - cap*tanh(z[c]/cap)", {"cap": 30.0},
                lambda torch, z, c, p: torch.nn.functional.cross_entropy(p["cap"] * torch.tanh(z / p["cap"]), c,
                                                                         reduction="none")),
}


