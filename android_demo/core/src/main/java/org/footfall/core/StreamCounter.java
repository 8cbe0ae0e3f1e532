package org.footfall.core;

import java.util.ArrayList;
import java.util.List;

/**
 * The streaming engine, PCM blocks in, step counts out: the Java twin of
 * {@code edge.stream.StreamCounter}.
 *
 * <p>Each block goes through the incremental front end ({@link StreamingLogMel}: only the frames
 * the block completes are computed) into a fixed {@link FrameRing} of {@code W + 4} frames; each
 * time a whole window is held (every hop) the model runs on it and the {@link Counter} commits
 * the density frames the {@link Alignment} assigns to that window. {@link #finish()} runs the
 * end-of-stream tail window. Streaming a recording in blocks of any size commits exactly the
 * density frames, from exactly the windows, that the Python runtime commits.
 *
 * <p>Single-threaded: call push/finish from one thread (the app's inference thread). Memory is
 * fixed once built; nothing but the returned updates is allocated per block.
 */
public final class StreamCounter {
    private final DensityModel model;
    private final Alignment align;
    private final StreamingLogMel frontend;
    private final FrameRing ring;
    private final float[] x; // model input (64, W) band-major, reused every hop
    private final Counter counter;
    private long windows = 0; // regular windows run so far
    private long samples = 0;
    private boolean finished = false;
    private boolean tailRan = false;
    private double latencyTotalMs = 0;
    private double latencyMaxMs = 0;
    private List<Update> pending; // updates of the block being pushed
    private Exception modelError;

    public StreamCounter(DensityModel model, MelFilterbank filters, int windowFrames, int hopFrames) {
        this(model, filters, windowFrames, hopFrames, null);
    }

    /** With the model card's rate calibration ({@code null}: none). */
    public StreamCounter(DensityModel model, MelFilterbank filters, int windowFrames, int hopFrames, RateCalibration calibration) {
        this(model, filters, new Alignment(windowFrames, hopFrames, Counter.DENSITY_STRIDE), calibration);
    }

    /** On any schedule (a hop and a lookahead; {@code edge.stream.StreamCounter(..., align=)}). */
    public StreamCounter(DensityModel model, MelFilterbank filters, Alignment align, RateCalibration calibration) {
        if (align.stride != Counter.DENSITY_STRIDE) {
            throw new IllegalArgumentException("density stride " + align.stride + " != the counter's " + Counter.DENSITY_STRIDE);
        }
        this.model = model;
        this.counter = new Counter(calibration);
        this.align = align;
        this.frontend = new StreamingLogMel(filters);
        this.ring = new FrameRing(FrontEnd.N_MELS, align.windowFrames + Counter.DENSITY_STRIDE);
        this.x = new float[FrontEnd.N_MELS * align.windowFrames];
    }

    /** From a verified model card, on its file schedule (a window every {@code hop_frames}, centre hop). */
    public StreamCounter(DensityModel model, MelFilterbank filters, ModelSpec spec) {
        this(model, filters, spec, false);
    }

    /**
     * From a verified model card; {@code lowLatency}: on the card's low-latency schedule when it
     * has one (a step counted within about half a second; {@code edge-run --low-latency}).
     */
    public StreamCounter(DensityModel model, MelFilterbank filters, ModelSpec spec, boolean lowLatency) {
        this(model, filters, spec.alignment(lowLatency), spec.calibration);
    }

    public Alignment alignment() {
        return align;
    }

    public int ringCapacity() {
        return ring.capacity();
    }

    private final StreamingLogMel.FrameSink sink = new StreamingLogMel.FrameSink() {
        @Override
        public void onFrame(float[] logMel, long frameIndex) {
            if (modelError != null) return;
            ring.write(logMel);
            if (ring.written() == align.windowEnd(windows)) {
                int[] c = align.commit(windows);
                try {
                    pending.add(run(align.windowStart(windows), c[0], c[1],
                            ring.written() / (double) FrontEnd.FRAMES_PER_SECOND, false));
                } catch (Exception e) {
                    modelError = e;
                    return;
                }
                windows++;
            }
        }
    };

    /** Consume {@code len} samples from {@code pcm[off]}; one {@link Update} per window that ran. */
    public List<Update> push(float[] pcm, int off, int len) throws Exception {
        if (finished) {
            throw new IllegalStateException("push() after finish(): build a new StreamCounter for a new stream");
        }
        for (int i = off; i < off + len; i++) {
            if (Float.isNaN(pcm[i]) || Float.isInfinite(pcm[i])) {
                throw new IllegalArgumentException("non-finite sample at stream sample " + (samples + i - off));
            }
        }
        pending = new ArrayList<>();
        frontend.push(pcm, off, len, sink);
        samples += len;
        List<Update> out = pending;
        pending = null;
        if (modelError != null) {
            Exception e = modelError;
            modelError = null;
            throw e;
        }
        return out;
    }

    public List<Update> push(float[] pcm) throws Exception {
        return push(pcm, 0, pcm.length);
    }

    /**
     * End of stream: run the tail window (if any density frames are left), emit the steps still
     * waiting for their peak, and freeze. The flushed events join the tail window's update, or
     * come in an update of their own (no model run) when there was no tail window.
     */
    public List<Update> finish() throws Exception {
        List<Update> out = new ArrayList<>();
        if (finished) return out;
        finished = true;
        double t = samples / (double) FrontEnd.SAMPLE_RATE;
        Alignment.Window tail = align.tail(ring.written(), counter.frames());
        if (tail != null) {
            tailRan = true;
            out.add(run(tail.startFrame, tail.lo, tail.hi, t, true));
        }
        double[] flushed = counter.flush();
        if (flushed.length > 0 && !out.isEmpty()) {
            Update u = out.remove(0);
            double[] ev = java.util.Arrays.copyOf(u.events, u.events.length + flushed.length);
            System.arraycopy(flushed, 0, ev, u.events.length, flushed.length);
            out.add(new Update(u.window, u.startFrame, u.lo, u.hi, u.t, u.tFinal, u.steps, u.cadenceSpm, u.latencyMs, ev, true));
        } else if (flushed.length > 0) {
            out.add(new Update(windows, ring.written(), 0, 0, t, counter.tFinal(), counter.steps(), counter.cadenceSpm(), 0.0, flushed, true));
        }
        return out;
    }

    private Update run(long start, int lo, int hi, double t, boolean isTail) throws Exception {
        int w = align.windowFrames;
        int n = (int) Math.min(w, ring.written() - start); // < W only for a short stream's tail
        ring.readInto(start, n, x, w);
        if (n < w) {
            for (int m = 0; m < FrontEnd.N_MELS; m++) {
                java.util.Arrays.fill(x, m * w + n, (m + 1) * w, Counter.PAD_LOG_MEL);
            }
        }
        long t0 = System.nanoTime();
        float[] d = model.run(x);
        double ms = (System.nanoTime() - t0) / 1e6;
        if (d == null || d.length != align.windowD()) {
            throw new IllegalStateException("model returned density of length " + (d == null ? "null" : d.length)
                    + ", expected " + align.windowD());
        }
        latencyTotalMs += ms;
        latencyMaxMs = Math.max(latencyMaxMs, ms);
        double[] events = counter.commit(d, lo, hi);
        return new Update(windows, start, lo, hi, t, counter.tFinal(), counter.steps(), counter.cadenceSpm(), ms, events, isTail);
    }

    // ---- results ----

    public double steps() {
        return counter.steps();
    }

    public int nEvents() {
        return counter.nEvents();
    }

    public double cadenceSpm() {
        return counter.cadenceSpm();
    }

    public double tFinal() {
        return counter.tFinal();
    }

    /** Model runs so far, the tail included. */
    public long windowsRun() {
        return windows + (tailRan ? 1 : 0);
    }

    public long framesSeen() {
        return ring.written();
    }

    public double audioSeconds() {
        return samples / (double) FrontEnd.SAMPLE_RATE;
    }

    public double meanLatencyMs() {
        long n = windowsRun();
        return n == 0 ? 0 : latencyTotalMs / n;
    }

    public double maxLatencyMs() {
        return latencyMaxMs;
    }
}
