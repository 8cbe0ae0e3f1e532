package org.footfall.core;

/**
 * A step-density network (contract 3): log-mel (1, 1, 64, T) float32 in, a non-negative step
 * density (T / stride) out, whose sum over the window is its step count.
 *
 * <p>The app implements it with ExecuTorch ({@code .pte}) and LiteRT ({@code .tflite}); tests
 * implement it by replaying densities the Python runtime wrote.
 */
public interface DensityModel extends AutoCloseable {
    /**
     * Run one window.
     *
     * @param logMel the window in the model's layout: (64, T) row-major, band-major
     *     ({@code logMel[m * T + t]}), T = the card's window_frames
     * @return the density, T / density_stride values
     */
    float[] run(float[] logMel) throws Exception;

    /** Release the runtime's native resources. */
    @Override
    default void close() {}
}
