package org.footfall.core;

import java.util.Arrays;

/**
 * Turns committed step-onset logits, frame by frame, into step events, cadence and active time:
 * the Java twin of {@code edge.counter.Counter} (the rules are in that module's docstring).
 *
 * <p>Four stages, each in stream order with bounded lookahead:
 * <ol>
 *   <li><b>peaks</b>: frame {@code j} is a peak when its logit reaches the threshold's, is higher
 *       than frame {@code j - 1} and not lower than {@code j + 1}; its time is the frame's centre
 *       moved by the vertex of the parabola through the three logits (within half a frame);
 *       through the cadence gate: within a train with a local step period, a peak sooner than
 *       {@code min_phase} periods after the last step is dropped, and a peak that reaches only the
 *       {@code weak_threshold} counts only where the next step is due (one period after the last,
 *       give or take {@code gap_tolerance} of a period);
 *   <li><b>minimum interval</b>: of two peaks closer than {@code min_interval_s} the higher one
 *       stays; a peak is final once the committed audio is {@code min_interval_s} past it. With
 *       {@code keep_first} (a streaming model's card) the first one stays instead and is final at
 *       once;
 *   <li><b>trains</b>: steps count once {@code train_steps} of them follow each other at most
 *       {@code max_gap_s} apart; a longer gap ends the train;
 *   <li><b>the cadence prior</b>: within a train, a gap of 2 or 3 local step periods (the mean
 *       of the last 8 intervals without the shortest and longest), give or take
 *       {@code gap_tolerance} of a period, gets the steps it missed, evenly spaced.
 * </ol>
 * A runner's figures: the stream is cut into {@link #ACTIVE_BIN_S} bins, a bin holding steps at
 * {@link #ACTIVE_MIN_SPM} or more is active; active time, mean cadence (steps per active minute)
 * and peak cadence (the highest cadence shown). Every comparison is made on the logits as float64
 * (from float32), every time is computed with the same float64 operations in the same order as
 * Python, so event times and counts are bit-identical to {@code edge/}. Fixed memory: a few values
 * per stage, the last 8 step intervals and the open activity bins. Not thread-safe (one scratch
 * array sorts the intervals): use it from one thread.
 */
public final class Counter {
    /** Front-end frames per output frame. */
    public static final int DENSITY_STRIDE = 4;
    /** 25 output frames (step-onset logits) per second. */
    public static final int DENSITY_FPS = FrontEnd.FRAMES_PER_SECOND / DENSITY_STRIDE;
    /** log-mel of digital silence, float32(log(LOG_EPS)) (-27.6): pads a stream shorter than one window. */
    public static final float PAD_LOG_MEL = (float) Math.log(FrontEnd.LOG_EPS);
    /** No cadence is shown before this much audio is final (s). */
    public static final double CADENCE_MIN_S = 3.0;
    /** Slower than the slowest walk: "no steps". */
    public static final double ACTIVE_MIN_SPM = 60.0;
    /** Active time is counted in bins of this length (s). */
    public static final double ACTIVE_BIN_S = 2.0;
    /** The local period is taken from this many last step intervals. */
    static final int N_INTERVALS = 8;

    /** What a runner is shown for the cadence ({@code Counter.cadence_state}). */
    public enum CadenceState {
        WARMING_UP("warming up"),
        NO_STEPS("no steps"),
        STEPS("steps");

        /** The Python name. */
        public final String label;

        CadenceState(String label) {
            this.label = label;
        }
    }

    private static final double[] EMPTY = new double[0];

    private final int fps;
    private final CounterParams params;
    private final double thr; // the threshold's logit
    private final double peakThr; // stage 1 finds peaks down to the weak threshold's logit
    private final int binLen; // output frames per activity bin
    private final long lagFrames;

    private int nEvents = 0;
    private long frames = 0; // output frames committed so far
    private long activeFrames = 0;
    private long activeSteps = 0;
    private double peakCadence = Double.NaN; // NaN: none shown yet

    // stage 1: the logits of frames j-1 and j-2
    private double v1 = Double.NEGATIVE_INFINITY;
    private double v2 = Double.NEGATIVE_INFINITY;
    // stage 2: the peak the interval rule holds
    private boolean hasPending = false;
    private double pendingT;
    private double pendingV;
    // stage 2 with keepFirst: the last peak kept
    private boolean hasFirst = false;
    private double firstT;
    // stage 3: steps of a train not yet long enough to count (at most trainSteps - 1 at rest)
    private final double[] held;
    private int nHeld = 0;
    private boolean inTrain = false;
    private boolean hasLast = false;
    private double lastT; // the last step counted
    private final double[] intervals = new double[N_INTERVALS]; // ring of the last 8 intervals
    private int nIntervals = 0;
    private int intervalHead = 0; // slot of the next interval
    private final double[] sorted = new double[N_INTERVALS];
    // stage 4: the open activity bins, a ring by bin index. A step lands at most one bin past the
    // last multiple of binLen committed, and bins up to lagFrames before it are closed there, so
    // at most ceil(lagFrames / binLen) + 1 bins are open.
    private final int[] binSteps;
    private long binsClosed = 0;

    // the events of the call in progress
    private double[] out = EMPTY;
    private int nOut = 0;

    public Counter(int fps, CounterParams params) {
        this.fps = fps;
        this.params = params;
        this.thr = params.thresholdLogit();
        this.peakThr = params.peakLogit();
        this.binLen = (int) Math.round(ACTIVE_BIN_S * fps);
        this.lagFrames = (long) Math.ceil(params.lagS() * fps) + 2;
        this.held = new double[params.trainSteps];
        this.binSteps = new int[(int) (lagFrames / binLen) + 3];
    }

    public Counter(CounterParams params) {
        this(DENSITY_FPS, params);
    }

    public Counter() {
        this(DENSITY_FPS, CounterParams.DEFAULTS);
    }

    public CounterParams params() {
        return params;
    }

    /** The count so far (a double, as every layer reports counts). */
    public double steps() {
        return nEvents;
    }

    /** Step events counted so far. */
    public int nEvents() {
        return nEvents;
    }

    /** Output frames committed so far. */
    public long frames() {
        return frames;
    }

    /** Audio time (s) up to which the model's output is committed. */
    public double tFinal() {
        return frames / (double) fps;
    }

    // ---- stage 1: peaks ----

    /**
     * Add the next committed logits {@code logits[lo..hi)} in stream order.
     *
     * @return the times (s) of the steps counted by them (a train's first steps and filled gaps
     *     are counted late, with their times); often empty
     */
    public double[] commit(float[] logits, int lo, int hi) {
        out = EMPTY;
        nOut = 0;
        for (int i = lo; i < hi; i++) {
            double v = logits[i];
            long j = frames; // this frame; decide whether frame j - 1 is a peak
            if (v1 >= peakThr && v1 > v2 && v1 >= v) {
                double den = v2 - 2.0 * v1 + v;
                double delta = v2 == Double.NEGATIVE_INFINITY || den >= 0.0
                        ? 0.0 : Math.min(0.5, Math.max(-0.5, 0.5 * (v2 - v) / den));
                peak((j - 1 + 0.5 + delta) / fps, v1);
            }
            v2 = v1;
            v1 = v;
            frames = j + 1;
            if (hasPending && (frames - 1) / (double) fps >= pendingT + params.minIntervalS) {
                accept(pendingT); // nothing later can displace it
                hasPending = false;
            }
            if (frames % binLen == 0) {
                closeBins(frames - lagFrames);
            }
        }
        return collected();
    }

    public double[] commit(float[] logits) {
        return commit(logits, 0, logits.length);
    }

    /**
     * End of stream: the last frame's peak, the held interval peak, and every bin closed. A train
     * shorter than {@code train_steps} at the end counts nothing.
     */
    public double[] flush() {
        out = EMPTY;
        nOut = 0;
        if (v1 >= peakThr && v1 > v2) {
            peak((frames - 1 + 0.5) / fps, v1);
        }
        v1 = v2 = Double.NEGATIVE_INFINITY;
        if (hasPending) {
            accept(pendingT);
            hasPending = false;
        }
        closeBins(frames + binLen);
        return collected();
    }

    // ---- stage 2: the minimum interval ----

    /** The cadence gate: true drops the peak at {@code t} of logit {@code v}. */
    private boolean gated(double t, double v) {
        double period = inTrain && hasLast ? periodOrNaN() : Double.NaN;
        if (Double.isNaN(period)) return v < thr; // outside a train (or before its period is known) only strong peaks
        double g = t - lastT;
        if (g < params.minPhase * period) return true;
        return v < thr && Math.abs(g - period) > params.gapTolerance * period;
    }

    private void peak(double t, double v) {
        if (gated(t, v)) return;
        if (params.keepFirst) { // the first of close peaks stays, final at once
            if (!hasFirst || t - firstT >= params.minIntervalS) {
                hasFirst = true;
                firstT = t;
                accept(t);
            }
            return;
        }
        if (hasPending && t - pendingT < params.minIntervalS) {
            if (v > pendingV) {
                pendingT = t;
                pendingV = v;
            }
            return;
        }
        if (hasPending) accept(pendingT);
        hasPending = true;
        pendingT = t;
        pendingV = v;
    }

    // ---- stage 3: trains and the cadence prior ----

    private void accept(double t) {
        CounterParams prm = params;
        if (!inTrain) {
            if (nHeld > 0 && t - held[nHeld - 1] > prm.maxGapS) {
                nHeld = 0; // too far from the last one: not a train
            }
            held[nHeld++] = t;
            if (nHeld >= prm.trainSteps) {
                inTrain = true;
                int n = nHeld;
                nHeld = 0;
                hasLast = false;
                for (int k = 0; k < n; k++) count(held[k]);
            }
            return;
        }
        double g = t - lastT;
        double period = periodOrNaN();
        if (prm.fillGaps && !Double.isNaN(period)) {
            double k = Math.rint(g / period); // Python's round(): half to even
            if ((k == 2 || k == 3) && Math.abs(g - k * period) <= prm.gapTolerance * period) {
                double last = lastT;
                for (int i = 1; i < k; i++) count(last + g * i / k);
                count(t);
                return;
            }
        }
        if (g > prm.maxGapS) { // the train broke: this step may start the next one
            inTrain = false;
            hasLast = false;
            nIntervals = 0;
            intervalHead = 0;
            accept(t);
            return;
        }
        count(t);
    }

    private void count(double t) {
        if (hasLast) {
            intervals[intervalHead] = t - lastT;
            intervalHead = (intervalHead + 1) % N_INTERVALS;
            nIntervals = Math.min(nIntervals + 1, N_INTERVALS);
        }
        hasLast = true;
        lastT = t;
        nEvents++;
        if (nOut == out.length) out = Arrays.copyOf(out, Math.max(4, 2 * nOut));
        out[nOut++] = t;
        long b = (long) (t * fps) / binLen;
        if (b >= binsClosed) { // (a step is never older than the lag, so its bin is open)
            if (b - binsClosed >= binSteps.length) { // a step is never later than the committed audio
                throw new IllegalStateException("step at " + t + " s is past the committed audio (" + tFinal() + " s)");
            }
            binSteps[(int) (b % binSteps.length)]++;
        }
        double cadence = shownCadenceOrNaN();
        if (!Double.isNaN(cadence) && nIntervals >= 6) {
            peakCadence = Double.isNaN(peakCadence) ? cadence : Math.max(peakCadence, cadence);
        }
    }

    /**
     * The local step period (s): the mean of the last 8 step intervals (at least 3) without their
     * shortest and longest (robust to one miss or echo), or null.
     */
    public Double period() {
        double p = periodOrNaN();
        return Double.isNaN(p) ? null : p;
    }

    private double periodOrNaN() {
        int n = nIntervals;
        if (n < 3) return Double.NaN;
        System.arraycopy(intervals, 0, sorted, 0, n); // the ring's order does not matter once sorted
        Arrays.sort(sorted, 0, n);
        double sum = 0.0;
        for (int i = 1; i < n - 1; i++) sum += sorted[i]; // in order, as Python's sum() (3.11) adds them
        return sum / (n - 2);
    }

    // ---- stage 4: a runner's figures ----

    /** Close the activity bins that end at or before {@code uptoFrame}: no step can land in them now. */
    private void closeBins(long uptoFrame) {
        long last = Math.floorDiv(Math.min(uptoFrame, frames + binLen), binLen);
        for (long b = binsClosed; b < last; b++) {
            int slot = (int) (b % binSteps.length);
            int n = binSteps[slot];
            binSteps[slot] = 0;
            long length = Math.min(binLen, frames - b * binLen);
            if (length > 0 && n * 60.0 * fps / length >= ACTIVE_MIN_SPM) {
                activeFrames += length;
                activeSteps += n;
            }
        }
        binsClosed = Math.max(binsClosed, last);
    }

    public long activeFrames() {
        return activeFrames;
    }

    public long activeSteps() {
        return activeSteps;
    }

    /** Active time (s): the time of the closed active bins. */
    public double activeSeconds() {
        return activeFrames / (double) fps;
    }

    /** Steps per active minute, or null before any active bin. */
    public Double meanCadence() {
        return activeFrames != 0 ? activeSteps * 60.0 * fps / activeFrames : null;
    }

    /** The highest cadence shown so far, or null. */
    public Double peakCadence() {
        return Double.isNaN(peakCadence) ? null : peakCadence;
    }

    /** The current cadence: 60 / the local step period while a train runs, else 0. */
    public double cadenceSpm() {
        double period = periodOrNaN();
        boolean running = inTrain && hasLast && tFinal() - lastT <= params.lagS();
        return running && !Double.isNaN(period) && period != 0.0 ? 60.0 / period : 0.0;
    }

    /** The cadence a runner is shown: null while warming up or while no steps run. */
    public Double shownCadence() {
        double c = shownCadenceOrNaN();
        return Double.isNaN(c) ? null : c;
    }

    private double shownCadenceOrNaN() {
        return cadenceState() == CadenceState.STEPS ? cadenceSpm() : Double.NaN;
    }

    /** Warming up (too little audio final), no steps, or steps. */
    public CadenceState cadenceState() {
        if (frames < CADENCE_MIN_S * fps) return CadenceState.WARMING_UP;
        return cadenceSpm() >= ACTIVE_MIN_SPM ? CadenceState.STEPS : CadenceState.NO_STEPS;
    }

    private double[] collected() {
        double[] r = nOut == out.length ? out : Arrays.copyOf(out, nOut);
        out = EMPTY;
        nOut = 0;
        return r;
    }
}
