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
 * the step-onset logits the {@link Alignment} assigns to that window and turns them into step
 * events. {@link #finish()} runs the end-of-stream tail window. A streaming model (a
 * {@link Alignment#stateful} schedule) takes each packet once, and its tail is the remaining
 * frames as one padded packet; the model is reset when the counter is built. A window of digital
 * silence is not run (every value at or below {@link Counter#SILENT_LOG_MEL}): its frames read
 * {@link Counter#SILENT_LOGIT} and a streaming model's state stays as it was; the silent frames
 * before a window's first sound take the mean level of its sound. Streaming a
 * recording in blocks of any size commits exactly the logits, from exactly the windows, that the
 * Python runtime commits, and counts the same steps at the same times.
 *
 * <p>Single-threaded: call push/finish from one thread (the app's inference thread). Memory is
 * fixed once built; nothing but the returned updates and event times is allocated per block.
 */
public final class StreamCounter {
    private final OnsetModel model;
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
    private float[] silentD; // a silent window's logits, made once
    private boolean[] loud; // levelled(): which frames of the window hold sound, made once

    /** A window every {@code hopFrames}, its centre hop committed, the counter's default parameters. */
    public StreamCounter(OnsetModel model, MelFilterbank filters, int windowFrames, int hopFrames) {
        this(model, filters, new Alignment(windowFrames, hopFrames, Counter.DENSITY_STRIDE), CounterParams.DEFAULTS);
    }

    /** On any schedule (a hop and a lookahead; {@code edge.stream.StreamCounter(..., align=)}) with the card's counter parameters. */
    public StreamCounter(OnsetModel model, MelFilterbank filters, Alignment align, CounterParams params) {
        if (align.stride != Counter.DENSITY_STRIDE) {
            throw new IllegalArgumentException("density stride " + align.stride + " != the counter's " + Counter.DENSITY_STRIDE);
        }
        this.model = model;
        this.counter = new Counter(params);
        this.align = align;
        this.frontend = new StreamingLogMel(filters);
        this.ring = new FrameRing(FrontEnd.N_MELS, align.windowFrames + Counter.DENSITY_STRIDE);
        this.x = new float[FrontEnd.N_MELS * align.windowFrames];
        model.reset(); // a streaming model starts every stream from its initial state
    }

    /**
     * From a verified model card, on its file schedule (a window every {@code hop_frames}, centre
     * hop; a streaming model's packets).
     */
    public StreamCounter(OnsetModel model, MelFilterbank filters, ModelSpec spec) {
        this(model, filters, spec, false);
    }

    /**
     * From a verified model card; {@code lowLatency}: on the card's low-latency schedule when it
     * has one (a shorter hop and lookahead: steps counted sooner; {@code edge-run --low-latency}).
     */
    public StreamCounter(OnsetModel model, MelFilterbank filters, ModelSpec spec, boolean lowLatency) {
        this(model, filters, spec.alignment(lowLatency), spec.counter);
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
     * End of stream: run the tail window (if any output frames are left), count what the counter
     * still holds ({@link Counter#flush()}) and freeze. As in {@code edge.stream}, the flushed
     * events join the tail window's update (with the final count), or
     * come in an update of their own (no model run) when there was no tail window; the final
     * figures are {@link #steps()}, {@link #nEvents()}, {@link #activeSeconds()} and the cadences.
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
            out.add(new Update(u.window, u.startFrame, u.lo, u.hi, u.t, u.tFinal, counter.steps(), u.cadenceSpm, u.latencyMs, ev, true));
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
        float[] d = silent(x) ? silentLogits() : model.run(levelled(x));
        double ms = (System.nanoTime() - t0) / 1e6;
        if (d == null || d.length != align.windowD()) {
            throw new IllegalStateException("model returned " + (d == null ? "null" : d.length + " logits")
                    + ", expected " + align.windowD());
        }
        latencyTotalMs += ms;
        latencyMaxMs = Math.max(latencyMaxMs, ms);
        double[] events = counter.commit(d, lo, hi);
        return new Update(windows, start, lo, hi, t, counter.tFinal(), counter.steps(), counter.cadenceSpm(), ms, events, isTail);
    }

    /** A window of digital silence: every value at or below {@link Counter#SILENT_LOG_MEL} (not run). */
    private static boolean silent(float[] x) {
        for (float v : x) {
            if (v > Counter.SILENT_LOG_MEL) {
                return false;
            }
        }
        return true;
    }

    /**
     * Sound after digital silence: the window's first frames of silence (every band at or below
     * {@link Counter#SILENT_LOG_MEL}, before its first frame of sound) take the mean level, per band, of
     * its frames of sound, so a streaming model's band norm never averages the silence in
     * (edge.stream._window_logits). The window is refilled from the ring for every run.
     */
    private float[] levelled(float[] x) {
        int w = align.windowFrames;
        int first = 0;
        while (first < w && frameMax(x, first, w) <= Counter.SILENT_LOG_MEL) first++;
        if (first == 0) return x;
        if (loud == null) loud = new boolean[w];
        for (int t = first; t < w; t++) loud[t] = frameMax(x, t, w) > Counter.SILENT_LOG_MEL;
        for (int m = 0; m < FrontEnd.N_MELS; m++) {
            double sum = 0.0;
            int n = 0;
            for (int t = first; t < w; t++) {
                if (loud[t]) {
                    sum += x[m * w + t];
                    n++;
                }
            }
            float level = (float) (sum / n);
            java.util.Arrays.fill(x, m * w, m * w + first, level);
        }
        return x;
    }

    private static float frameMax(float[] x, int t, int w) {
        float max = Float.NEGATIVE_INFINITY;
        for (int m = 0; m < FrontEnd.N_MELS; m++) max = Math.max(max, x[m * w + t]);
        return max;
    }

    private float[] silentLogits() {
        if (silentD == null) {
            silentD = new float[align.windowD()];
            java.util.Arrays.fill(silentD, Counter.SILENT_LOGIT);
        }
        return silentD;
    }

    // ---- results ----

    /** The count so far (all of it after {@link #finish()}). */
    public double steps() {
        return counter.steps();
    }

    public int nEvents() {
        return counter.nEvents();
    }

    public double cadenceSpm() {
        return counter.cadenceSpm();
    }

    /** The cadence a runner is shown, or null while warming up or while no steps run. */
    public Double shownCadence() {
        return counter.shownCadence();
    }

    public Counter.CadenceState cadenceState() {
        return counter.cadenceState();
    }

    /** Active time (s) of the closed activity bins (all of them after {@link #finish()}). */
    public double activeSeconds() {
        return counter.activeSeconds();
    }

    /** Steps per active minute, or null before any active bin. */
    public Double meanCadenceSpm() {
        return counter.meanCadence();
    }

    /** The highest cadence shown, or null. */
    public Double peakCadenceSpm() {
        return counter.peakCadence();
    }

    public CounterParams counterParams() {
        return counter.params();
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
