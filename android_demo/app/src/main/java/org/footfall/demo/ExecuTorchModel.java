package org.footfall.demo;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.footfall.core.FrontEnd;
import org.footfall.core.ModelSpec;
import org.footfall.core.OnsetModel;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;

/**
 * A .pte step-onset model run by the ExecuTorch Android runtime (XNNPACK delegate inside).
 *
 * <p>A streaming model (the card's {@code state}) takes the packet and one tensor per state buffer
 * and gives the logits and the new state, in the same order (a program has no tensor names: the
 * exported step's order); the state is kept here, from zeros at load and at {@link #reset()}.
 */
final class ExecuTorchModel implements OnsetModel {
    private final Module module;
    private final long[] shape;
    private final int outLength;
    private final float[][] state;
    private final long[][] stateShapes;

    /** A windowed model. */
    ExecuTorchModel(String path, int windowFrames, int densityStride) {
        this(path, windowFrames, densityStride, Collections.<ModelSpec.State>emptyList());
    }

    /**
     * @param path absolute path of the .pte on the device's file system (ExecuTorch maps files;
     *     it cannot read a compressed APK asset directly, so {@link ModelFiles} copies it first)
     * @param state the card's state tensors (empty: a windowed model)
     */
    ExecuTorchModel(String path, int windowFrames, int densityStride, List<ModelSpec.State> state) {
        module = Module.load(path);
        shape = new long[] {1, 1, FrontEnd.N_MELS, windowFrames};
        outLength = windowFrames / densityStride;
        this.state = new float[state.size()][];
        stateShapes = new long[state.size()][];
        for (int i = 0; i < state.size(); i++) {
            ModelSpec.State s = state.get(i);
            this.state[i] = new float[s.size()];
            stateShapes[i] = new long[s.shape.length];
            for (int d = 0; d < s.shape.length; d++) stateShapes[i][d] = s.shape[d];
        }
        module.loadMethod("forward"); // pay the method-load cost now, not on the first window
    }

    @Override
    public void reset() {
        for (float[] s : state) Arrays.fill(s, 0f);
    }

    @Override
    public float[] run(float[] logMel) {
        EValue[] inputs = new EValue[1 + state.length];
        inputs[0] = EValue.from(Tensor.fromBlob(logMel, shape)); // contiguous (1, 1, 64, T) float32
        for (int i = 0; i < state.length; i++) inputs[i + 1] = EValue.from(Tensor.fromBlob(state[i], stateShapes[i]));
        EValue[] outputs = module.forward(inputs);
        if (outputs.length != inputs.length) {
            throw new IllegalStateException("model returned " + outputs.length + " outputs, expected " + inputs.length
                    + " (the logits and " + state.length + " state tensors)");
        }
        float[] logits = outputs[0].toTensor().getDataAsFloatArray();
        if (logits.length != outLength) {
            throw new IllegalStateException("model returned " + logits.length + " logits, card says " + outLength);
        }
        for (int i = 0; i < state.length; i++) {
            float[] s = outputs[i + 1].toTensor().getDataAsFloatArray();
            if (s.length != state[i].length) {
                throw new IllegalStateException("state output " + (i + 1) + " has " + s.length + " values, card says "
                        + state[i].length);
            }
            System.arraycopy(s, 0, state[i], 0, s.length);
        }
        return logits;
    }

    @Override
    public void close() {
        module.destroy();
    }
}
