package org.footfall.core;

/** What one model run (one hop) changed: the twin of {@code edge.stream.Update}. */
public final class Update {
    /** 0, 1, ... in stream order (the tail window is the last). */
    public final long window;
    /**
     * First front-end frame of the window. An end-of-stream update with no model run (only
     * flushed step events) has {@code lo == hi == 0} and {@code latencyMs == 0}.
     */
    public final long startFrame;
    /** Local output-frame range [lo, hi) of logits the window committed. */
    public final int lo;
    public final int hi;
    /** Audio seconds consumed when this window ran. */
    public final double t;
    /** The count is final up to this audio time (s). */
    public final double tFinal;
    /** Step events counted so far (a run's first steps are counted once the tracker confirms the runner). */
    public final double steps;
    /** The current cadence: 60 / the local step period while the tracker follows a runner, else 0 ({@link Counter#cadenceSpm()}). */
    public final double cadenceSpm;
    /** Model inference time of this window. */
    public final double latencyMs;
    /** Times (s) of the steps this window counted (each the decision lag late; a run's first steps later, with their times). */
    public final double[] events;
    /** The end-of-stream window. */
    public final boolean tail;

    public Update(long window, long startFrame, int lo, int hi, double t, double tFinal, double steps,
            double cadenceSpm, double latencyMs, double[] events, boolean tail) {
        this.window = window;
        this.startFrame = startFrame;
        this.lo = lo;
        this.hi = hi;
        this.t = t;
        this.tFinal = tFinal;
        this.steps = steps;
        this.cadenceSpm = cadenceSpm;
        this.latencyMs = latencyMs;
        this.events = events;
        this.tail = tail;
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "Update(window=%d, t=%.2f, t_final=%.2f, steps=%.3f, cadence=%.1f, events=%d%s)",
                window, t, tFinal, steps, cadenceSpm, events.length, tail ? ", tail" : "");
    }
}
