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
        google()
        mavenCentral() // org.pytorch:executorch-android
    }
}

rootProject.name = "SSDMobileDemo"
include(":app")
// Plain Kotlin (no Android dependencies): sidecar, preprocessing, box decoding, NMS, preview
// mapping, latency statistics. Unit-tested on the JVM, also without Gradle: postprocess/test.sh.
include(":postprocess")
