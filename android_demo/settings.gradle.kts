// footfall Android demo: a live step counter (app) over a plain-Java DSP core (core).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()        // LiteRT, the Android Gradle plugin
        mavenCentral()  // ExecuTorch (org.pytorch:executorch-android), fbjni, soloader, junit
    }
}

rootProject.name = "footfall-android"
include(":core", ":app")
