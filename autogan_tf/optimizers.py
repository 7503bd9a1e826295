"""Adam with PyTorch's arithmetic, and a variant that can skip variables in a step.

The official code trains G, D and the controller with ``torch.optim.Adam``;
the golden tests compare our steps with its steps, so the generator and
discriminator optimizers compute what it computes (`TorchAdam`), and the
supernet's generator optimizer can leave the ops a step did not use exactly
as they were (`MaskedAdam`, see `gan_trainer`'s unused-ops policy).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from autogan_tf import keras_compat


class TorchAdam(keras.optimizers.Optimizer):
    """Adam with PyTorch's arithmetic: a step count per variable, epsilon after the bias correction.

    PyTorch's ``torch.optim.Adam`` (what the official code trains with) keeps
    a step count ``t`` per parameter and steps by
    ``lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. Keras' Adam
    uses the optimizer's global step for ``t`` and adds ``eps`` before the
    bias correction (an effective eps of 1e-8 / sqrt(1 - b2^t)). The two
    agree for dense training from step 1; they differ for supernet ops a step
    skipped (see `MaskedAdam`: a skipped op keeps its own count, as PyTorch 2
    skips a parameter without gradient) and for gradients near eps. The
    golden tests compare this with PyTorch step for step.

    Its variables are created in the order of Keras' Adam (the moments, then the
    velocities), followed by one step count per variable.

    Args:
      learning_rate: a float or a Keras learning-rate schedule.
      beta_1: the first moment's decay.
      beta_2: the second moment's decay.
      epsilon: PyTorch's epsilon, added after the bias correction.
      name: the optimizer's name.
      **kwargs: other arguments of `keras.optimizers.Optimizer`.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 name="torch_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        """Create the moments, the velocities and one step count per variable of ``var_list``.

        Args:
          var_list: the variables this optimizer will update.
        """
        if self.built:
            return
        super().build(var_list)
        self.moments, self.velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        self.steps = [self.add_variable((), initializer="zeros", dtype=v.dtype,
                                        name=f"{v.name}_step") for v in var_list]

    def slots(self, variable):
        """``(moment, velocity, step count)`` of ``variable``: what a checkpoint of PyTorch's
        Adam holds as ``exp_avg``, ``exp_avg_sq`` and ``step``.

        Args:
          variable: one of the variables the optimizer was built with.
        """
        index = keras_compat.variable_index(self, variable)
        return self.moments[index], self.velocities[index], self.steps[index]

    def update_step(self, gradient, variable, learning_rate):
        """One PyTorch-style Adam update of ``variable``, advancing its own step count.

        Args:
          gradient: the variable's gradient.
          variable: the variable to update.
          learning_rate: the current learning rate (after any schedule).
        """
        self._adam(gradient, variable, learning_rate, active=None)

    def _adam(self, gradient, variable, learning_rate, active):
        """The update as TensorFlow's fused Adam kernel, with PyTorch's arithmetic.

        ``ResourceApplyAdam`` steps by ``lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + e)``;
        with ``e = eps sqrt(1 - b2^t)`` that is PyTorch's step exactly (up to rounding).
        One kernel reads and writes the value and both moments once; the same update
        written as a dozen element-wise ops took 5 % of a search step at 8 px.

        Args:
          gradient: the variable's gradient.
          variable: the variable to update.
          learning_rate: the current learning rate.
          active: None, or a scalar bool tensor; where False, nothing changes (value,
            moments, step count): the kernel runs with rate 0 and betas 1.
        """
        dtype = variable.dtype
        m, v, step = self.slots(variable)
        one, zero = tf.ones((), dtype), tf.zeros((), dtype)
        self.assign_add(step, one if active is None else tf.cast(active, dtype))
        t = tf.convert_to_tensor(step)
        b1, b2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        b1_power, b2_power = tf.pow(b1, t), tf.pow(b2, t)
        scalars = {"lr": tf.cast(learning_rate, dtype), "beta1": b1, "beta2": b2,
                   "beta1_power": b1_power, "beta2_power": b2_power,
                   "epsilon": tf.cast(self.epsilon, dtype) * tf.sqrt(one - b2_power)}
        if active is not None:
            skipped = {"lr": zero, "beta1": one, "beta2": one, "beta1_power": zero,
                       "beta2_power": zero, "epsilon": one}
            scalars = {k: tf.where(active, x, skipped[k]) for k, x in scalars.items()}
        tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=m.handle, v=v.handle,
                                     grad=tf.cast(gradient, dtype), use_locking=False,
                                     **scalars)

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class MaskedAdam(TorchAdam):
    """Adam that can leave chosen variables (value, moments, step count) untouched in a step.

    `apply_masked(grads, variables, masks)` takes one scalar bool tensor per
    variable; where it is False the variable's update is skipped entirely.

    The supernet's generator step uses it with the ops the sampled architecture did not use
    masked out (``unused_ops="freeze"``). Constructor arguments are `TorchAdam`'s.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._step_masks = None

    def apply_masked(self, grads, variables, masks):
        """Apply ``grads`` like `apply_gradients`, skipping the variables whose mask is False.

        Args:
          grads: one gradient per variable.
          variables: the variables to update.
          masks: one scalar bool tensor per variable (True: update it).
        """
        self._step_masks = {keras_compat.variable_index(self, v): m
                            for v, m in zip(variables, masks)}
        try:
            self.apply_gradients(zip(grads, variables))
        finally:
            self._step_masks = None

    def update_step(self, gradient, variable, learning_rate):
        """`TorchAdam.update_step`, leaving value, moments and step count as they are where the
        variable's mask is False.

        Variables without a mask (outside `apply_masked`) are updated normally.

        Args:
          gradient: the variable's gradient.
          variable: the variable to update.
          learning_rate: the current learning rate.
        """
        mask = None if self._step_masks is None else self._step_masks.get(
            keras_compat.variable_index(self, variable))
        self._adam(gradient, variable, learning_rate, active=mask)


def make_adam(learning_rate, beta1, beta2, decay_steps=None, masked=False, name=None):
    """Adam with the paper's betas and an optional linear decay of the rate to 0.

    Args:
      learning_rate: the initial learning rate.
      beta1: Adam's beta_1 (the paper: 0).
      beta2: Adam's beta_2 (the paper: 0.9).
      decay_steps: optimizer steps over which the rate falls linearly to 0; None or 0 keeps
        it constant.
      masked: a `MaskedAdam` (supernet generator) instead of a `TorchAdam`.
      name: the optimizer's name.

    Returns:
      The optimizer (epsilon 1e-8), not yet built.
    """
    if decay_steps:
        learning_rate = keras.optimizers.schedules.PolynomialDecay(
            learning_rate, decay_steps, end_learning_rate=0.0, power=1.0)
    cls = MaskedAdam if masked else TorchAdam
    return cls(learning_rate=learning_rate, beta_1=beta1, beta_2=beta2, epsilon=1e-8, name=name)
