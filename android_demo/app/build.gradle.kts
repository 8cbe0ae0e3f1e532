plugins {
    id("com.android.application")
}

android {
    namespace = "org.footfall.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.footfall.demo"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // ExecuTorch ships arm64-v8a and x86_64 native libraries (phones and the emulator).
        ndk {
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            // The bundled model (.pte / .tflite + .card.json) and mel_filters.npy, straight from
            // the Python runtime's folder: one copy of each artifact in the repository.
            val footfallAssets = project.findProperty("footfallAssets") as String? ?: "../edge/assets"
            assets.srcDirs("src/main/assets", rootProject.file(footfallAssets))
        }
    }

    androidResources {
        // Models stay uncompressed in the APK (copied once to files/, then mapped).
        noCompress += listOf("pte", "tflite")
        // edge/assets also holds the desktop demo's sample run and ONNX models: not needed here.
        // (AAPT's default ignore list, plus *.wav, *.csv and *.onnx.)
        ignoreAssetsPattern = "!.svn:!.git:!.ds_store:!*.scc:.*:<dir>_*:!CVS:!thumbs.db:!picasa.ini:!*~:!*.wav:!*.csv:!*.onnx:!*.pt:!*.pt.json"
    }

    packaging {
        jniLibs {
            // Page-aligned, uncompressed native libraries (Android 15+ 16 KB pages).
            useLegacyPackaging = false
            // ExecuTorch (via fbjni) and other AARs may each ship the C++ runtime.
            pickFirsts += "**/libc++_shared.so"
        }
    }
}

dependencies {
    implementation(project(":core"))

    // ExecuTorch Android runtime (Java API org.pytorch.executorch; XNNPACK inside). Keep it at
    // the version of the Python `executorch` that exported the .pte (1.5.1, see pyproject.toml).
    // It brings fbjni and soloader transitively from its POM.
    implementation("org.pytorch:executorch-android:1.5.1")

    // LiteRT (the successor of TensorFlow Lite): org.tensorflow.lite.Interpreter for .tflite.
    implementation("com.google.ai.edge.litert:litert:1.4.1")

    testImplementation("junit:junit:4.13.2")
}
