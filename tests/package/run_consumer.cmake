# Installs the built project into a private prefix, then configures, builds
# and runs tests/package/consumer against it with find_package(mipin).
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE code)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "failed (${code}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${MIPIN_BINARY_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G Ninja
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix} ${CONSUMER_ARGS})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
# The Python package installed under the same prefix imports from there.
if(PYTHON_INSTALL_DIR)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env ${PYTHON_ENV} PYTHONPATH=${prefix}/${PYTHON_INSTALL_DIR}
            ${PYTHON} -c "import mipin; assert mipin.__file__.startswith('${prefix}/'), mipin.__file__; print('python: import mipin', mipin.__version__, 'from the prefix')"
    RESULT_VARIABLE code)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "the installed Python package does not import (${code})")
  endif()
endif()
