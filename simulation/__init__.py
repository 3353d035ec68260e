"""The synthetic billing world: PayNudge's default data set and the ground truth policies face.

A population of telecom/utility customers with documented latent traits receives monthly
invoices, pays them (or not), is reminded by a historical *logging policy* that explores, opens,
clicks, replies, opts out and churns. :func:`simulation.world.simulate_world` returns the raw
tables *and* the ground truth; :func:`simulation.truth.response_probabilities` exposes the true
response of a customer to any reminder, which later issues evaluate policies against.
"""
