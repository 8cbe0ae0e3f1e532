package org.footfall.demo;

import org.footfall.core.OnsetModel;
import org.footfall.core.FrontEnd;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;

/** A .pte step-onset model run by the ExecuTorch Android runtime (XNNPACK delegate inside). */
final class ExecuTorchModel implements OnsetModel {
    private final Module module;
    private final long[] shape;
    private final int outLength;

    /**
     * @param path absolute path of the .pte on the device's file system (ExecuTorch maps files;
     *     it cannot read a compressed APK asset directly, so {@link ModelFiles} copies it first)
     */
    ExecuTorchModel(String path, int windowFrames, int densityStride) {
        module = Module.load(path);
        shape = new long[] {1, 1, FrontEnd.N_MELS, windowFrames};
        outLength = windowFrames / densityStride;
        module.loadMethod("forward"); // pay the method-load cost now, not on the first window
    }

    @Override
    public float[] run(float[] logMel) {
        Tensor input = Tensor.fromBlob(logMel, shape); // contiguous (1, 1, 64, T) float32
        EValue[] outputs = module.forward(EValue.from(input));
        float[] logits = outputs[0].toTensor().getDataAsFloatArray();
        if (logits.length != outLength) {
            throw new IllegalStateException("model returned " + logits.length + " logits, card says " + outLength);
        }
        return logits;
    }

    @Override
    public void close() {
        module.destroy();
    }
}
