plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

// The repository around this project: the packaged default models and the shared test vectors and releases.
val repository = rootDir.parentFile

android {
    namespace = "com.portraitsdk.demo"
    compileSdk = 34

    defaultConfig {
        applicationId = "com.portraitsdk.demo"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1.0"
    }

    sourceSets["main"].assets.srcDir(repository.resolve("portrait_sdk/assets/models"))

    androidResources {
        noCompress += "tflite" // MediaPipe and LiteRT map the model from the APK
        ignoreAssetsPatterns += "!README.md"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    kotlinOptions {
        jvmTarget = "17"
    }

    testOptions {
        unitTests.all {
            it.systemProperty("portrait.vectors", repository.resolve("tests/vectors").path)
            it.systemProperty("portrait.export", repository.resolve("export").path)
        }
    }
}

dependencies {
    implementation(libs.mediapipe.tasks.vision)
    implementation(libs.litert)
    testImplementation(libs.junit)
    testImplementation(libs.orgjson) // org.json is part of Android, not of the JVM the unit tests run on
}
