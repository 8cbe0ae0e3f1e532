package org.footfall.core;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The event counter's parameters (a model card's {@code counter}): the Java twin of
 * {@code edge.counter.CounterParams}, with the same defaults, checks and derived values.
 *
 * <ul>
 *   <li>{@code threshold}: a peak's step probability (sigmoid of the logit) must reach it;
 *   <li>{@code min_interval_s}: two steps are at least this far apart; of two closer peaks the
 *       higher wins;
 *   <li>{@code train_steps}, {@code max_gap_s}: steps count once {@code train_steps} of them
 *       follow each other at most {@code max_gap_s} apart (a lone knock counts nothing);
 *   <li>{@code fill_gaps}, {@code gap_tolerance}: the cadence prior: a gap within
 *       {@code gap_tolerance} periods of 2 or 3 local step periods gets the steps it missed;
 *   <li>{@code keep_first}: of two peaks closer than {@code min_interval_s} the first stays (final
 *       as soon as it is a peak) instead of the higher (final {@code min_interval_s} later);
 *   <li>{@code weak_threshold}, {@code min_phase}: the cadence gate: within a train, a peak that
 *       reaches only the weak threshold counts where the next step is due, and a peak sooner than
 *       {@code min_phase} step periods after the last step is dropped ({@code null} in the card,
 *       {@code NaN} here: no weak peaks; 0: nothing dropped).
 * </ul>
 */
public final class CounterParams {
    /** The card's names, in {@code edge.counter.CounterParams} field order. */
    public static final List<String> NAMES =
            Arrays.asList("threshold", "min_interval_s", "train_steps", "max_gap_s", "fill_gaps", "gap_tolerance",
                    "keep_first", "weak_threshold", "min_phase");

    public final double threshold;
    public final double minIntervalS;
    public final int trainSteps;
    public final double maxGapS;
    public final boolean fillGaps;
    public final double gapTolerance;
    public final boolean keepFirst;
    /** NaN: none (the card's null). */
    public final double weakThreshold;
    public final double minPhase;

    /** The shipped defaults (a card with an empty {@code counter}). */
    public static final CounterParams DEFAULTS = new CounterParams(0.2, 0.25, 4, 1.25, true, 0.2, false, Double.NaN, 0.0);

    /** With {@code keep_first} false: of two close peaks the higher stays. */
    public CounterParams(double threshold, double minIntervalS, int trainSteps, double maxGapS, boolean fillGaps,
            double gapTolerance) {
        this(threshold, minIntervalS, trainSteps, maxGapS, fillGaps, gapTolerance, false);
    }

    /** Without the cadence gate. */
    public CounterParams(double threshold, double minIntervalS, int trainSteps, double maxGapS, boolean fillGaps,
            double gapTolerance, boolean keepFirst) {
        this(threshold, minIntervalS, trainSteps, maxGapS, fillGaps, gapTolerance, keepFirst, Double.NaN, 0.0);
    }

    public CounterParams(double threshold, double minIntervalS, int trainSteps, double maxGapS, boolean fillGaps,
            double gapTolerance, boolean keepFirst, double weakThreshold, double minPhase) {
        if (!(0.0 < threshold && threshold < 1.0)) {
            throw new IllegalArgumentException("counter threshold " + threshold + " must be a probability in (0, 1)");
        }
        if (!(0.0 < minIntervalS && minIntervalS < maxGapS && maxGapS <= 10.0)) {
            throw new IllegalArgumentException("counter needs 0 < min_interval_s < max_gap_s <= 10, got "
                    + minIntervalS + ", " + maxGapS);
        }
        if (!(1 <= trainSteps && trainSteps <= 16)) {
            throw new IllegalArgumentException("counter train_steps " + trainSteps + " must be a whole number in [1, 16]");
        }
        if (!(0.0 <= gapTolerance && gapTolerance < 0.5)) {
            throw new IllegalArgumentException("counter gap_tolerance " + gapTolerance + " must be in [0, 0.5)");
        }
        if (!Double.isNaN(weakThreshold) && !(0.0 < weakThreshold && weakThreshold <= threshold)) {
            throw new IllegalArgumentException("counter weak_threshold " + weakThreshold
                    + " must be a probability in (0, threshold " + threshold + "], or null");
        }
        if (!(0.0 <= minPhase && minPhase < 1.0)) {
            throw new IllegalArgumentException("counter min_phase " + minPhase + " must be in [0, 1)");
        }
        this.threshold = threshold;
        this.minIntervalS = minIntervalS;
        this.trainSteps = trainSteps;
        this.maxGapS = maxGapS;
        this.fillGaps = fillGaps;
        this.gapTolerance = gapTolerance;
        this.keepFirst = keepFirst;
        this.weakThreshold = weakThreshold;
        this.minPhase = minPhase;
    }

    /**
     * From a card's {@code counter} object as plain values (numbers, a boolean); null or empty:
     * the defaults; missing names take theirs. Unknown names and wrong types are refused
     * ({@link IllegalArgumentException}), as {@code CounterParams.from_dict} refuses them.
     */
    public static CounterParams fromMap(Map<String, ?> d) {
        if (d == null || d.isEmpty()) return DEFAULTS;
        for (String k : d.keySet()) {
            if (!NAMES.contains(k)) {
                throw new IllegalArgumentException("unknown counter parameter '" + k + "' (known: " + NAMES + ")");
            }
        }
        CounterParams p = DEFAULTS;
        return new CounterParams(
                number(d, "threshold", p.threshold),
                number(d, "min_interval_s", p.minIntervalS),
                whole(d, "train_steps", p.trainSteps),
                number(d, "max_gap_s", p.maxGapS),
                flag(d, "fill_gaps", p.fillGaps),
                number(d, "gap_tolerance", p.gapTolerance),
                flag(d, "keep_first", p.keepFirst),
                d.containsKey("weak_threshold") && d.get("weak_threshold") == null
                        ? Double.NaN : number(d, "weak_threshold", p.weakThreshold),
                number(d, "min_phase", p.minPhase));
    }

    private static double number(Map<String, ?> d, String k, double dflt) {
        Object v = d.get(k);
        if (!d.containsKey(k)) return dflt;
        if (!(v instanceof Number)) throw new IllegalArgumentException("counter " + k + " " + v + " must be a number");
        return ((Number) v).doubleValue();
    }

    private static int whole(Map<String, ?> d, String k, int dflt) {
        Object v = d.get(k);
        if (!d.containsKey(k)) return dflt;
        if (!(v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte)
                || ((Number) v).longValue() != ((Number) v).intValue()) {
            throw new IllegalArgumentException("counter " + k + " " + v + " must be a whole number in [1, 16]");
        }
        return ((Number) v).intValue();
    }

    private static boolean flag(Map<String, ?> d, String k, boolean dflt) {
        Object v = d.get(k);
        if (!d.containsKey(k)) return dflt;
        if (!(v instanceof Boolean)) throw new IllegalArgumentException("counter " + k + " " + v + " must be true or false");
        return (Boolean) v;
    }

    /** As the card writes it ({@code CounterParams.to_dict}). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("threshold", threshold);
        m.put("min_interval_s", minIntervalS);
        m.put("train_steps", trainSteps);
        m.put("max_gap_s", maxGapS);
        m.put("fill_gaps", fillGaps);
        m.put("gap_tolerance", gapTolerance);
        m.put("keep_first", keepFirst);
        m.put("weak_threshold", Double.isNaN(weakThreshold) ? null : weakThreshold);
        m.put("min_phase", minPhase);
        return m;
    }

    /** The logit of {@link #threshold}: a peak's logit must reach it. */
    public double thresholdLogit() {
        return Math.log(threshold / (1.0 - threshold));
    }

    /** The logit a peak must reach: the weak threshold's, or the threshold's without one. */
    public double peakLogit() {
        return Double.isNaN(weakThreshold) ? thresholdLogit() : Math.log(weakThreshold / (1.0 - weakThreshold));
    }

    /** The longest an event can wait before it is emitted (a train being confirmed), in seconds. */
    public double lagS() {
        return Math.max(trainSteps, 3) * maxGapS + minIntervalS;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof CounterParams)) return false;
        CounterParams p = (CounterParams) o;
        return threshold == p.threshold && minIntervalS == p.minIntervalS && trainSteps == p.trainSteps
                && maxGapS == p.maxGapS && fillGaps == p.fillGaps && gapTolerance == p.gapTolerance
                && keepFirst == p.keepFirst
                && (weakThreshold == p.weakThreshold || Double.isNaN(weakThreshold) && Double.isNaN(p.weakThreshold))
                && minPhase == p.minPhase;
    }

    @Override
    public int hashCode() {
        return toMap().hashCode();
    }

    @Override
    public String toString() {
        return "CounterParams" + toMap();
    }
}
