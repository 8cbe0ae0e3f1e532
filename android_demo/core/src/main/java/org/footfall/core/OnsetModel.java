package org.footfall.core;

/**
 * A step-onset network (contract 3): log-mel (1, 1, 64, T) float32 in, one step-onset logit per
 * output frame (T / stride, 25 per second) out; {@code sigmoid} of a logit is the probability
 * that a step lands in that frame, and the {@link Counter} finds the steps with its cadence tracker.
 *
 * <p>A streaming model (a card with a {@code state}) carries state between calls: each call takes
 * the next packet of the stream (T = the packet) with the state the previous call returned, and
 * {@link #reset()} puts it back to its initial state; {@link StreamCounter} resets it at the start
 * of every stream, as {@code edge.stream} does.
 *
 * <p>The app implements it with ExecuTorch ({@code .pte}) and LiteRT ({@code .tflite}); tests
 * implement it by replaying logits the Python runtime wrote.
 */
public interface OnsetModel extends AutoCloseable {
    /**
     * Run one window.
     *
     * @param logMel the window in the model's layout: (64, T) row-major, band-major
     *     ({@code logMel[m * T + t]}), T = the card's window_frames
     * @return the step-onset logits, T / density_stride values
     */
    float[] run(float[] logMel) throws Exception;

    /** Back to the initial state (a streaming model's; a windowed model has none: nothing to do). */
    default void reset() {}

    /** Release the runtime's native resources. */
    @Override
    default void close() {}
}
