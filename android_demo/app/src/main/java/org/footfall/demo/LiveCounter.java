package org.footfall.demo;

import java.util.List;
import org.footfall.core.Alignment;
import org.footfall.core.OnsetModel;
import org.footfall.core.FloatRingBuffer;
import org.footfall.core.FrontEnd;
import org.footfall.core.MelFilterbank;
import org.footfall.core.ModelSpec;
import org.footfall.core.StreamCounter;
import org.footfall.core.Update;

/**
 * The live pipeline: microphone -> ring buffer -> (inference thread) log-mel -> model ->
 * step-onset logits -> step events, count and cadence, all in the plain-Java core except the
 * capture and the model.
 */
final class LiveCounter implements Runnable {
    interface Listener {
        /** On the inference thread: post to the UI thread yourself. */
        void onUpdate(Update update, StreamCounter counter, long droppedSamples);

        void onStopped(StreamCounter counter, String error);
    }

    /** 4 s of audio between the recorder and the inference thread. */
    static final int RING_SECONDS = 4;

    private final OnsetModel model;
    private final StreamCounter counter;
    private final FloatRingBuffer ring = new FloatRingBuffer(RING_SECONDS * FrontEnd.SAMPLE_RATE);
    private final AudioCapture capture = new AudioCapture(ring);
    private final Listener listener;
    private volatile boolean running;
    private Thread thread;

    /** {@code lowLatency}: the card's low-latency schedule when it has one (else its file schedule). */
    LiveCounter(OnsetModel model, MelFilterbank filters, ModelSpec spec, boolean lowLatency, Listener listener) {
        this.model = model;
        this.counter = new StreamCounter(model, filters, spec, lowLatency);
        this.listener = listener;
    }

    Alignment alignment() {
        return counter.alignment();
    }

    void start() {
        capture.start(); // throws if the microphone cannot be opened
        running = true;
        thread = new Thread(this, "footfall-inference");
        thread.start();
    }

    /** Release the model of a counter that was never started. */
    void discard() {
        model.close();
    }

    /** Stop recording; the inference thread counts what is buffered, runs the tail window and ends. */
    void stop() {
        running = false;
        capture.stop();
    }

    /** Stop and wait until the inference thread has ended. */
    void stopAndJoin() {
        stop();
        if (thread != null) {
            try {
                thread.join(3000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void run() {
        float[] block = new float[FrontEnd.SAMPLE_RATE / 10]; // up to 100 ms per push
        String error = null;
        try {
            while (true) {
                boolean live = running;
                if (live) ring.await(FrontEnd.HOP_LENGTH, 100);
                int n = ring.read(block, 0, block.length);
                if (n > 0) {
                    List<Update> ups = counter.push(block, 0, n);
                    for (Update u : ups) listener.onUpdate(u, counter, ring.dropped());
                } else if (!live) {
                    break; // stopped and drained
                }
                if (capture.error() != null) {
                    error = capture.error();
                    break;
                }
            }
            for (Update u : counter.finish()) listener.onUpdate(u, counter, ring.dropped());
        } catch (Exception e) {
            error = e.getClass().getSimpleName() + ": " + e.getMessage();
            capture.stop();
        } finally {
            model.close();
        }
        listener.onStopped(counter, error);
    }
}
