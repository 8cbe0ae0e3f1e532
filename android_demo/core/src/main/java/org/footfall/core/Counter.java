package org.footfall.core;

/**
 * Integrates committed density frames into steps, step events and cadence: the Java twin of
 * {@code edge.counter.Counter}.
 *
 * <p>{@code steps} is the float64 sum of the committed float32 density, frame by frame (so it is
 * bit-identical to the Python count). The k-th step event fires when the sum reaches
 * {@code k - 0.5}; its time is the centre of the highest density frame committed since the
 * previous event. Cadence is the committed mass of the last 10 s, in steps per minute. Fixed
 * memory: a ring of 250 density frames.
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
    private double steps = 0.0;
    private int nEvents = 0;
    private long frames = 0;
    private double peakVal = Double.NEGATIVE_INFINITY;
    private long peakFrame = 0;

    public Counter(int fps, double cadenceWindowS) {
        this.fps = fps;
        this.ring = new double[(int) Math.round(cadenceWindowS * fps)];
    }

    public Counter() {
        this(DENSITY_FPS, CADENCE_WINDOW_S);
    }

    /** Cumulative committed density: the step count. */
    public double steps() {
        return steps;
    }

    /** Step events emitted so far ({@code floor(steps + 0.5)}). */
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
     * @return the times (s) of the steps these frames completed (often empty)
     */
    public double[] commit(float[] density, int lo, int hi) {
        double[] events = new double[0];
        int n = 0;
        for (int i = lo; i < hi; i++) {
            double v = density[i];
            long j = frames;
            steps += v;
            ring[(int) (j % ring.length)] = v;
            if (v > peakVal) {
                peakVal = v;
                peakFrame = j;
            }
            while (steps >= nEvents + 0.5) {
                if (n == events.length) events = java.util.Arrays.copyOf(events, Math.max(4, 2 * n));
                events[n++] = (peakFrame + 0.5) / fps;
                nEvents++;
                peakVal = Double.NEGATIVE_INFINITY;
                peakFrame = j;
            }
            frames++;
        }
        return n == events.length ? events : java.util.Arrays.copyOf(events, n);
    }

    public double[] commit(float[] density) {
        return commit(density, 0, density.length);
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
