package org.footfall.demo;

import android.annotation.SuppressLint;
import android.media.AudioFormat;
import android.media.AudioRecord;
import android.media.MediaRecorder;
import android.os.Process;
import org.footfall.core.FloatRingBuffer;
import org.footfall.core.FrontEnd;

/**
 * Records 16-kHz mono 16-bit PCM with AudioRecord on its own thread and writes it, as float in
 * [-1, 1) (x / 32768, as soundfile reads 16-bit audio for edge/), into a {@link FloatRingBuffer}.
 * The thread does nothing else, so a slow model never makes the microphone overflow: the ring
 * absorbs up to its capacity and then drops the oldest audio (counted).
 */
final class AudioCapture implements Runnable {
    /** Raised on the capture thread; reported by {@link #error()}. */
    private volatile String error;
    private volatile boolean running;
    private final FloatRingBuffer ring;
    private Thread thread;
    private AudioRecord record;

    AudioCapture(FloatRingBuffer ring) {
        this.ring = ring;
    }

    /**
     * Open the microphone and start the capture thread. The caller has checked RECORD_AUDIO.
     *
     * @throws IllegalStateException if the device cannot record 16-kHz mono PCM
     */
    @SuppressLint("MissingPermission")
    void start() {
        int minBytes = AudioRecord.getMinBufferSize(FrontEnd.SAMPLE_RATE, AudioFormat.CHANNEL_IN_MONO,
                AudioFormat.ENCODING_PCM_16BIT);
        if (minBytes <= 0) {
            throw new IllegalStateException("this device cannot record 16 kHz mono 16-bit PCM (getMinBufferSize=" + minBytes + ")");
        }
        int bytes = Math.max(minBytes, FrontEnd.SAMPLE_RATE * 2 / 2); // at least 0.5 s
        // VOICE_RECOGNITION: the source tuned for analysis (no noise suppression; AGC off on most
        // devices). The model is trained on armband audio with AGC and clipping, not on
        // speech-processed audio.
        record = new AudioRecord.Builder()
                .setAudioSource(MediaRecorder.AudioSource.VOICE_RECOGNITION)
                .setAudioFormat(new AudioFormat.Builder()
                        .setEncoding(AudioFormat.ENCODING_PCM_16BIT)
                        .setSampleRate(FrontEnd.SAMPLE_RATE)
                        .setChannelMask(AudioFormat.CHANNEL_IN_MONO)
                        .build())
                .setBufferSizeInBytes(bytes)
                .build();
        if (record.getState() != AudioRecord.STATE_INITIALIZED) {
            record.release();
            record = null;
            throw new IllegalStateException("the microphone could not be opened (is another app recording?)");
        }
        running = true;
        thread = new Thread(this, "footfall-audio");
        thread.start();
    }

    @Override
    public void run() {
        Process.setThreadPriority(Process.THREAD_PRIORITY_URGENT_AUDIO);
        short[] pcm16 = new short[1024]; // 64 ms
        float[] pcm = new float[pcm16.length];
        try {
            record.startRecording();
            while (running) {
                int n = record.read(pcm16, 0, pcm16.length, AudioRecord.READ_BLOCKING);
                if (n < 0) {
                    error = "AudioRecord.read failed with code " + n;
                    break;
                }
                for (int i = 0; i < n; i++) pcm[i] = pcm16[i] / 32768f;
                ring.write(pcm, 0, n);
            }
        } catch (RuntimeException e) {
            error = "recording stopped: " + e.getMessage();
        } finally {
            try {
                record.stop();
            } catch (IllegalStateException ignored) {
                // never started
            }
            record.release();
        }
    }

    /** Stop recording and wait for the thread to end. */
    void stop() {
        running = false;
        if (thread != null) {
            try {
                thread.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            thread = null;
        }
    }

    String error() {
        return error;
    }
}
