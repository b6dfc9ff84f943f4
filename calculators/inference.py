"""TfLiteInference: run a TFLite model (LiteRT + XNNPACK) on each packet of tensors.

Generic on purpose: it knows nothing of faces. A model with custom ops runs as long as
each op has a registered numpy kernel (:mod:`facegraph.models.custom_ops`; MediaPipe's
Attention Mesh ops are built in)::

    - calculator: TfLiteInference
      inputs: {TENSORS: input_tensor}
      outputs: {TENSORS: landmark_tensors}
      options: {model: face_landmark_with_attention, threads: 2}

LiteRT is imported when the node opens, so loading a graph stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
from facegraph import Calculator, CalculatorContext, Input, Output, StrictOptions, register
from facegraph.models.thread_choice import check_threads
from facegraph.models.uint8_input import check_value_range
from pydantic import BeforeValidator, Field, field_validator

#: The ``threads`` option of every LiteRT node: a fixed count, or "auto" (the default):
#: one or two XNNPACK threads, whichever runs faster under the current load (see
#: facegraph.models.thread_choice). Outputs are the same bits either way.
#: Checked before the union so that a bad value gets one problem, not one per member.
ThreadsOption = Annotated[int | Literal["auto"], BeforeValidator(check_threads)]

#: The ``uint8_input`` option of model nodes: None (the model takes its float input), or
#: [min, max]: it takes uint8 pixels, mapped onto that range inside the model (see
#: facegraph.models.uint8_input), as ImageToTensor's ``output_type: uint8`` emits them.
UInt8InputOption = Annotated[tuple[float, float] | None, BeforeValidator(check_value_range)]


@register("TfLiteInference")
class TfLiteInference(Calculator["TfLiteInference.Options"]):
    """Runs a .tflite model on each input packet; tensors addressed by name or position.

    Inputs (connect exactly one form): ``TENSORS`` carries all model inputs at once, as a
    dict {input name: array}, a list in model input order, or a single array for a
    one-input model; or ``TENSOR:i`` carries the model's i-th input.
    Outputs (any of): ``TENSORS`` is a dict {output name: array} in model output order;
    ``TENSOR:i`` is the model's i-th output. Arrays may omit a leading batch dim of 1.
    A timestamp without input produces no output (the bound still advances).
    """

    class Options(StrictOptions):
        model: str = Field(
            min_length=1,
            description="a model name from `facegraph models list` (fetched and verified on "
            "first use) or the path of a .tflite file",
        )
        threads: ThreadsOption = Field(
            "auto", description="LiteRT/XNNPACK threads for this node: a count, or 'auto'"
        )
        custom_ops: Literal["lower", "split"] = Field(
            "lower",
            description="custom ops with built-in lowerings: 'lower' (one interpreter) or "
            "'split' (sub-models + numpy kernels, the general path)",
        )
        uint8_input: UInt8InputOption = Field(
            None,
            description="[min, max]: a one-input image model takes uint8 pixels, mapped "
            "onto this range inside the model (ImageToTensor output_type: uint8)",
        )

        @field_validator("model")
        @classmethod
        def _model_exists(cls, value: str) -> str:
            # Fail at load (``facegraph validate``), naming the file, rather than when
            # the graph starts: an unknown name or a missing file can never work.
            from facegraph.models.store import model_reference_problem

            problem = model_reference_problem(value)
            if problem is not None:
                raise ValueError(problem)
            return value

    TENSORS_IN: Input[Any] = Input(
        "TENSORS", optional=True, doc="all inputs: dict name→array, list, or one array"
    )
    TENSOR_IN: Input[np.ndarray] = Input(
        "TENSOR", np.ndarray, optional=True, multiple=True, doc="TENSOR:i = model input i"
    )
    TENSORS_OUT: Output[dict[str, np.ndarray]] = Output(
        "TENSORS",
        dict[str, np.ndarray],
        optional=True,
        doc="dict output name→array, in model output order",
    )
    TENSOR_OUT: Output[np.ndarray] = Output(
        "TENSOR", np.ndarray, optional=True, multiple=True, doc="TENSOR:i = model output i"
    )

    def open(self, ctx: CalculatorContext) -> None:
        from facegraph.models import model_path
        from facegraph.models.inference import TfLiteModel

        self._model = TfLiteModel(
            model_path(self.options.model),
            threads=self.options.threads,
            custom_ops=self.options.custom_ops,
            uint8_input=self.options.uint8_input,
        )
        n_in = len(self._model.input_details)
        n_out = len(self._model.output_details)
        self._n_tensor_in = ctx.count(self.TENSOR_IN)
        self._n_tensor_out = ctx.count(self.TENSOR_OUT)
        has_all = ctx.count(self.TENSORS_IN) > 0
        name = self._model.path.name
        if has_all == (self._n_tensor_in > 0):
            raise ValueError(
                f"connect either TENSORS or TENSOR:0..{n_in - 1} as input of model {name} "
                f"(inputs: {self._model.input_names}), not both or neither"
            )
        if self._n_tensor_in and self._n_tensor_in != n_in:
            raise ValueError(
                f"model {name} has {n_in} input(s) {self._model.input_names}, but "
                f"{self._n_tensor_in} TENSOR:i stream(s) are connected"
            )
        if self._n_tensor_out > n_out:
            raise ValueError(
                f"model {name} has {n_out} output(s) {self._model.output_names}, but "
                f"TENSOR:{self._n_tensor_out - 1} is connected"
            )
        self._emit_all = ctx.count(self.TENSORS_OUT) > 0

    def process(self, ctx: CalculatorContext) -> None:
        inputs = self._gather(ctx)
        if inputs is None:
            return
        outputs = self._model.run(inputs)
        if self._n_tensor_out:
            values = list(outputs.values())
            for i in range(self._n_tensor_out):
                ctx.emit(self.TENSOR_OUT, values[i], i)
        if self._emit_all:
            ctx.emit(self.TENSORS_OUT, outputs)

    def _gather(self, ctx: CalculatorContext) -> Mapping[str, np.ndarray] | np.ndarray | None:
        names = self._model.input_names
        if not self._n_tensor_in:
            value = ctx.get(self.TENSORS_IN)
            if value is None or isinstance(value, (np.ndarray, Mapping)):
                return value
            if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
                if len(value) != len(names):
                    raise ValueError(
                        f"TENSORS has {len(value)} array(s); model {self._model.path.name} "
                        f"takes {len(names)}: {names}"
                    )
                return dict(zip(names, value, strict=True))
            raise TypeError(
                "TENSORS must be a dict name→array, a list of arrays or one array, "
                f"got {type(value).__name__}"
            )
        packets = [ctx.get(self.TENSOR_IN, i) for i in range(self._n_tensor_in)]
        present = [p is not None for p in packets]
        if not any(present):
            return None
        if not all(present):
            missing = [f"TENSOR:{i}" for i, ok in enumerate(present) if not ok]
            raise ValueError(f"inputs {missing} have no packet at {ctx.timestamp}")
        return {name: p for name, p in zip(names, packets, strict=True) if p is not None}
