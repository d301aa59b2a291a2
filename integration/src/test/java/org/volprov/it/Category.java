package org.volprov.it;

/**
 * The scenario categories, one test class each, tagged so that one category runs alone:
 * {@code bash scripts/test.sh -pl integration -am -Dgroups=ImageCaching}.
 */
final class Category {
    static final String FULL_PROVISIONING_WORKFLOW = "FullProvisioningWorkflow";
    static final String IMAGE_CACHING = "ImageCaching";
    static final String ERROR_SCENARIOS = "ErrorScenarios";
    static final String PERFORMANCE = "Performance";
    static final String CONCURRENT_REQUESTS = "ConcurrentRequests";
    static final String RATE_LIMITING = "RateLimiting";
    static final String NETWORK_INTERRUPTION = "NetworkInterruption";
    static final String DISK_FULL = "DiskFull";
    static final String SERVICE_RESTART = "ServiceRestart";
    static final String RESOURCE_CLEANUP = "ResourceCleanup";
    static final String INVALID_INPUTS = "InvalidInputs";
    static final String MULTI_ENGINE = "MultiEngine";

    private Category() {
    }
}
