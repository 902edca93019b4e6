# Runs the quickstart (which fits a flow and saves circle.safetensors in its working directory),
# then load_and_sample on that file; both must succeed and load_and_sample must print its samples.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
execute_process(COMMAND "${QUICKSTART}" WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT EXISTS "${WORK_DIR}/circle.safetensors")
  message(FATAL_ERROR "quickstart failed (${rc}):\n${out}\n${err}")
endif()
execute_process(COMMAND "${LOAD_AND_SAMPLE}" WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCHALL "log p = -?[0-9]+\\.[0-9]+" samples "${out}")
list(LENGTH samples count)
if(NOT rc EQUAL 0 OR NOT count EQUAL 5)
  message(FATAL_ERROR "load_and_sample failed (${rc}, ${count} samples):\n${out}\n${err}")
endif()
execute_process(COMMAND "${LOAD_AND_SAMPLE}" "${WORK_DIR}/no-such-file.safetensors"
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "no-such-file.safetensors")
  message(FATAL_ERROR "load_and_sample on a missing file: exit ${rc}, message '${err}'")
endif()
message(STATUS "${out}")
