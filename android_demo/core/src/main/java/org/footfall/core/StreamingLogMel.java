package org.footfall.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Incremental front end, the twin of {@code edge.frontend.StreamingLogMel}: push blocks of any
 * size, get exactly the offline frames (bit-identical: the same per-frame code runs on the same
 * samples).
 *
 * <p>Keeps one N_FFT buffer: HISTORY samples of left context plus the samples of the frame being
 * filled. Each completed frame is handed to a {@link FrameSink}; nothing is allocated per push.
 */
public final class StreamingLogMel {
    /** Receives each new frame; {@code logMel} is reused after the call returns: copy it to keep it. */
    public interface FrameSink {
        void onFrame(float[] logMel, long frameIndex);
    }

    private final LogMel logMel;
    private final float[] buf = new float[FrontEnd.N_FFT];
    private final float[] frameOut = new float[FrontEnd.N_MELS];
    private int fill = FrontEnd.HISTORY; // samples in buf; the first HISTORY start as zeros
    private long framesEmitted = 0;

    public StreamingLogMel(MelFilterbank filters) {
        this.logMel = new LogMel(filters);
    }

    public long framesEmitted() {
        return framesEmitted;
    }

    public void reset() {
        java.util.Arrays.fill(buf, 0f);
        fill = FrontEnd.HISTORY;
        framesEmitted = 0;
    }

    /** Push {@code len} samples from {@code src[off]}; returns the number of frames emitted. */
    public int push(float[] src, int off, int len, FrameSink sink) {
        int emitted = 0;
        int end = off + len;
        while (off < end) {
            int take = Math.min(FrontEnd.N_FFT - fill, end - off);
            System.arraycopy(src, off, buf, fill, take);
            fill += take;
            off += take;
            if (fill == FrontEnd.N_FFT) {
                logMel.frame(buf, 0, frameOut);
                sink.onFrame(frameOut, framesEmitted);
                framesEmitted++;
                emitted++;
                System.arraycopy(buf, FrontEnd.HOP_LENGTH, buf, 0, FrontEnd.HISTORY);
                fill = FrontEnd.HISTORY;
            }
        }
        return emitted;
    }

    /** Convenience: push a block and collect its new frames ([k][N_MELS], k may be 0). */
    public float[][] push(float[] samples) {
        final List<float[]> frames = new ArrayList<>();
        push(samples, 0, samples.length, (f, i) -> frames.add(f.clone()));
        return frames.toArray(new float[0][]);
    }
}
