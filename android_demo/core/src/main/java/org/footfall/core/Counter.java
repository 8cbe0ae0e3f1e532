package org.footfall.core;

/**
 * Integrates committed density frames into steps, step events and cadence: the Java twin of
 * {@code edge.counter.Counter}.
 *
 * <p>{@code steps} is the float64 sum of the committed float32 density, frame by frame (so it is
 * bit-identical to the Python count). The k-th step happens when the sum reaches
 * {@code k - 0.5}; its time is the centre of the highest density frame committed since the
 * previous event, and it is emitted once that bump has peaked (a later frame is lower) or at
 * {@link #flush()}, so after flush there are {@code floor(steps + 0.5)} events. Cadence is the
 * committed mass of the last 10 s, in steps per minute. Fixed memory: a ring of 250 frames.
 *
 * <p>With a {@link RateCalibration} each frame is multiplied, as it is committed, by the gain of
 * the uncalibrated rate of the last {@code windowS} seconds (this frame included), with the same
 * float64 operations in the same order as Python, so calibrated counts are bit-identical too;
 * {@link #rawSteps()} keeps the uncalibrated sum.
 */
public final class Counter {
    /** Front-end frames per density frame. */
    public static final int DENSITY_STRIDE = 4;
    /** 25 density frames per second. */
    public static final int DENSITY_FPS = FrontEnd.FRAMES_PER_SECOND / DENSITY_STRIDE;
    public static final double CADENCE_WINDOW_S = 10.0;
    /** log-mel of digital silence, float32(log(1e-6)): pads a stream shorter than one window. */
    public static final float PAD_LOG_MEL = (float) Math.log(FrontEnd.LOG_EPS);

    private final int fps;
    private final double[] ring;
    private final RateCalibration calibration; // null: every frame counts as it is
    private final double[] raw; // uncalibrated density of the calibration window
    private double rawSum = 0.0;
    private double rawSteps = 0.0;
    private double steps = 0.0;
    private int nEvents = 0;
    private long frames = 0;
    private double peakVal = Double.NEGATIVE_INFINITY;
    private long peakFrame = 0;
    private int pending = 0; // crossings waiting for their bump's peak

    public Counter(int fps, double cadenceWindowS, RateCalibration calibration) {
        this.fps = fps;
        this.ring = new double[(int) Math.round(cadenceWindowS * fps)];
        this.calibration = calibration;
        this.raw = new double[calibration == null ? 1 : calibration.windowFrames(fps)];
    }

    public Counter(int fps, double cadenceWindowS) {
        this(fps, cadenceWindowS, null);
    }

    public Counter(RateCalibration calibration) {
        this(DENSITY_FPS, CADENCE_WINDOW_S, calibration);
    }

    public Counter() {
        this(DENSITY_FPS, CADENCE_WINDOW_S, null);
    }

    /** The uncalibrated sum of the committed density (equal to {@link #steps()} without calibration). */
    public double rawSteps() {
        return rawSteps;
    }

    /** Cumulative committed density: the step count. */
    public double steps() {
        return steps;
    }

    /** Step events emitted so far ({@code floor(steps + 0.5)} after {@link #flush()}). */
    public int nEvents() {
        return nEvents;
    }

    /** Density frames committed so far. */
    public long frames() {
        return frames;
    }

    /** Audio time (s) up to which the count is final. */
    public double tFinal() {
        return frames / (double) fps;
    }

    /**
     * Add the next density frames {@code density[lo..hi)} in stream order.
     *
     * @return the times (s) of the steps whose bump has peaked within these frames (often empty)
     */
    public double[] commit(float[] density, int lo, int hi) {
        events = EMPTY;
        nOut = 0;
        for (int i = lo; i < hi; i++) {
            double v = density[i];
            long j = frames;
            rawSteps += v;
            if (calibration != null) { // the gain of the uncalibrated rate over the last windowS, this frame included
                int slot = (int) (j % raw.length);
                rawSum += v - raw[slot];
                raw[slot] = v;
                double rate = rawSum * (60.0 * fps) / Math.min(j + 1, raw.length);
                v = v * calibration.gain(rate);
            }
            if (pending > 0 && v < peakVal) { // the bump that carried the count over has peaked
                emit();
            }
            steps += v;
            ring[(int) (j % ring.length)] = v;
            if (v > peakVal) {
                peakVal = v;
                peakFrame = j;
            }
            while (steps >= nEvents + pending + 0.5) {
                pending++;
            }
            frames++;
        }
        return collected();
    }

    public double[] commit(float[] density) {
        return commit(density, 0, density.length);
    }

    /** End of stream: the steps still waiting for their bump's peak. */
    public double[] flush() {
        events = EMPTY;
        nOut = 0;
        if (pending > 0) emit();
        return collected();
    }

    /** Steps counted but not yet emitted as events (their bump has not peaked yet). */
    public int pending() {
        return pending;
    }

    private static final double[] EMPTY = new double[0];
    private double[] events = EMPTY;
    private int nOut = 0;

    private void emit() {
        double t = (peakFrame + 0.5) / fps;
        for (int k = 0; k < pending; k++) {
            if (nOut == events.length) events = java.util.Arrays.copyOf(events, Math.max(4, 2 * nOut));
            events[nOut++] = t;
        }
        nEvents += pending;
        pending = 0;
        peakVal = Double.NEGATIVE_INFINITY;
    }

    private double[] collected() {
        double[] out = nOut == events.length ? events : java.util.Arrays.copyOf(events, nOut);
        events = EMPTY;
        nOut = 0;
        return out;
    }

    /** Steps per minute over the last {@code CADENCE_WINDOW_S} of committed audio. */
    public double cadenceSpm() {
        if (frames == 0) return 0.0;
        long span = Math.min(frames, ring.length);
        double sum = 0.0;
        for (double v : ring) sum += v;
        return sum * 60.0 * fps / span;
    }
}
