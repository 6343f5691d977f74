"""Looking inside: gradient flow through time, gate activations, saturation, unit correlations."""

from .gates import gate_activations, saturation, top_units
from .gradient_flow import GradientFlow, gradient_flow, network_gradient_flow

__all__ = ["GradientFlow", "gradient_flow", "network_gradient_flow", "gate_activations",
           "saturation", "top_units"]
